"""Helpers for edged tests.

``MemMeta`` stands in for ``edgecore.metaclient.MetaClient`` (owned by the
edgehub branch) ONLY until that is merged: a dict-backed object with the same
methods, which records the status patches and deletions edged sends. Tests that
use it must switch to the real MetaClient on a beehive Context with
metamanager once it exists.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecore.edged.devcontainerd import DevContainerd
from edgecore.edged.runtime import PodRuntime
from edgecore.edged.settings import EdgedSettings


class MetaNotFound(Exception):
    """Named like metaclient's, which edged matches by name."""


class MetaAlreadyExists(Exception):
    pass


class MemMeta:
    def __init__(self) -> None:
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.leases: dict[str, dict[str, Any]] = {}
        self.pod_patches: list[tuple[str, str, dict[str, Any]]] = []
        self.node_patches: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str, dict[str, Any]]] = []
        self.token_requests: list[dict[str, Any]] = []
        self.offline = False

    def _check(self) -> None:
        if self.offline:
            raise ConnectionError("cloud unreachable")

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return copy.deepcopy(self.configmaps[(namespace, name)])
        except KeyError:
            raise MetaNotFound(f"configmap {namespace}/{name}") from None

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return copy.deepcopy(self.secrets[(namespace, name)])
        except KeyError:
            raise MetaNotFound(f"secret {namespace}/{name}") from None

    async def get_service_account_token(
        self, namespace: str, sa: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        self._check()
        self.token_requests.append(request)
        out = copy.deepcopy(request)
        out["status"] = {"token": f"token-for-{namespace}-{sa}", "expirationTimestamp": None}
        return out

    async def create_node(self, node: dict[str, Any]) -> dict[str, Any]:
        self._check()
        name = node["metadata"]["name"]
        if name in self.nodes:
            raise MetaAlreadyExists(name)
        self.nodes[name] = copy.deepcopy(node)
        self.nodes[name]["metadata"]["uid"] = str(uuid.uuid4())
        return copy.deepcopy(self.nodes[name])

    async def get_node(self, name: str) -> dict[str, Any]:
        self._check()
        try:
            return copy.deepcopy(self.nodes[name])
        except KeyError:
            raise MetaNotFound(name) from None

    async def patch_node_status(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._check()
        self.node_patches.append(copy.deepcopy(patch))
        return copy.deepcopy(self.nodes[name])

    async def get_lease(self, name: str) -> dict[str, Any]:
        self._check()
        try:
            return copy.deepcopy(self.leases[name])
        except KeyError:
            raise MetaNotFound(name) from None

    async def create_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        self._check()
        name = lease["metadata"]["name"]
        if name in self.leases:
            raise MetaAlreadyExists(name)
        self.leases[name] = copy.deepcopy(lease)
        self.leases[name]["metadata"]["resourceVersion"] = "1"
        return copy.deepcopy(self.leases[name])

    async def update_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        self._check()
        name = lease["metadata"]["name"]
        rv = int(self.leases[name]["metadata"].get("resourceVersion", "1")) + 1
        self.leases[name] = copy.deepcopy(lease)
        self.leases[name]["metadata"]["resourceVersion"] = str(rv)
        return copy.deepcopy(self.leases[name])

    async def patch_pod_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        self._check()
        self.pod_patches.append((namespace, name, copy.deepcopy(patch)))
        return {}

    async def delete_pod(self, namespace: str, name: str, options: dict[str, Any]) -> None:
        self._check()
        self.deleted.append((namespace, name, copy.deepcopy(options)))

    async def list_pods(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(p) for p in self.pods.values()]


async def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(interval)


def make_settings(containerd: DevContainerd, root: Path, **kw: Any) -> EdgedSettings:
    values: dict[str, Any] = {
        "node_name": f"edge-{uuid.uuid4().hex[:8]}",
        "node_ip": "127.0.0.1",
        "runtime_endpoint": containerd.endpoint,
        "root_directory": root,
        "relist_interval": 0.2,
        "backoff_initial": 1.0,
        "backoff_max": 4.0,
        "default_grace_period": 2,
    }
    values.update(kw)
    return EdgedSettings(**values)


async def teardown_runtime(rt: PodRuntime) -> None:
    uids = list(rt.pods)
    for uid in uids:
        rt.remove_pod(rt.pods[uid].pod)
    await rt.workers.wait_idle()
    await rt.close()
    owned = {"kubeedge-py.io/node": rt.settings.node_name}
    for sb in await rt.cri.list_pod_sandbox(owned):
        await rt.cri.stop_pod_sandbox(sb.id)
        await rt.cri.remove_pod_sandbox(sb.id)


def make_pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
        "spec": {
            "containers": containers,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 2,
            **spec,
        },
        "status": {"phase": "Pending"},
    }


def find_condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == ctype)


def container_status(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in status.get("containerStatuses") or [] if c["name"] == name)
