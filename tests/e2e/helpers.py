"""Objects and checks for the e2e tests (busybox pods pinned to the stack's node)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

import kubeclient
from fixtures.apiserver import ENV_KUBECONFIG
from keadm.devstack import DevStack, StackSettings, python_env
from keadm.devstack.requirements import INSTALL_HINT, missing_requirements
from keadm.devstack.workload import BUSYBOX_IMAGE
from kecommon.config import EdgeCoreConfig

IDLE = 'trap "exit 0" TERM; while true; do sleep 1; done'


def configmap(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": data}


def secret(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": ns},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def busybox(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name, "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script], **extra,
    }


def pod(
    ns: str, name: str, node: str, containers: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"test": name}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "containers": containers,
            **spec,
        },
    }


async def create(stack: DevStack, ref: kubeclient.ResourceRef, body: dict[str, Any]) -> Any:
    return await stack.client().create(ref, body, namespace=body["metadata"]["namespace"])


def restart_count(p: dict[str, Any], container: str) -> int:
    for cs in (p.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            return int(cs.get("restartCount") or 0)
    return 0


#: Crash-loop back-off of the e2e edge (kubelet's 10 s .. 5 min would make the
#: crash-loop test wait 10 s per restart).
POD_BACKOFF = (2.0, 8.0)


def quick_edge(cfg: EdgeCoreConfig) -> None:
    """edgecore_overrides of the e2e stack: our ``modules.edged`` extension keys."""
    backoff = cfg.modules.edged.pod_backoff
    backoff.initial_seconds, backoff.max_seconds = POD_BACKOFF


def stack_settings(work_dir: Path) -> StackSettings:
    env = os.environ.get(ENV_KUBECONFIG)
    return StackSettings(
        work_dir=work_dir,
        kubeconfig=Path(env) if env else None,
        # Quicker node heartbeats than the 10 s default make "Ready again" quick to see.
        node_status_update_frequency="2s",
        step_timeout=90.0,
        edgecore_overrides=quick_edge,
    )


def require_machine() -> None:
    missing = missing_requirements()
    if missing:
        pytest.fail(f"the e2e stack needs {', '.join(missing)}: {INSTALL_HINT}")
    if os.geteuid() != 0:
        pytest.fail("the e2e stack needs root (its private containerd creates namespaces)")


def demo_env() -> dict[str, str]:
    env = python_env()
    env.pop("KUBECONFIG", None)
    if os.environ.get(ENV_KUBECONFIG):
        env["KUBECONFIG"] = os.environ[ENV_KUBECONFIG]
    return env


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found
