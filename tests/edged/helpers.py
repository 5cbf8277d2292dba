"""Helpers for edged tests: the real metamanager and MetaClient, and a cloud stand-in.

edged's tests run the real edge data path below the WebSocket:
``MetaClient`` -> ``metamanager`` (SQLite in a tmp dir) -> the hub module. In
place of edgehub + cloudcore, :class:`CloudStandIn` registers as the hub module
(``websocket``) and answers upstream requests the way cloudcore does
(protocol.md 6.1-6.4: ObjectResp for node/lease/podpatch, the object for
configmap/secret queries, ``OK`` for a pod delete, a StatusError for a missing
object), recording each request; :meth:`CloudStandIn.send_down` plays the
cloud's downstream messages (pods, configmaps, secrets) into metamanager,
which stores and acks them as it does for the real cloud.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beehive import constants as c
from beehive.context import Context
from beehive.message import Message
from edgecore.edged.devcontainerd import DevContainerd
from edgecore.edged.runtime import PodRuntime
from edgecore.edged.settings import EdgedSettings
from edgecore.metaclient import MetaClient
from edgecore.metamanager.manager import MetaManager
from edgecore.metamanager.settings import MetaSettings


class CloudAnswers:
    """The cloud's side of edge requests: answers like cloudcore's edgecontroller, records."""

    def __init__(self) -> None:
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.leases: dict[str, dict[str, Any]] = {}
        self.requests: list[Message] = []
        self.acks: list[Message] = []

    # what the cloud got
    def pod_patches(self, name: str | None = None) -> list[dict[str, Any]]:
        return [
            json.loads(m.content)
            for m in self.requests
            if "/podpatch/" in m.resource and (name is None or m.resource.endswith("/" + name))
        ]

    def node_patches(self) -> list[dict[str, Any]]:
        return [json.loads(m.content) for m in self.requests if "/nodepatch/" in m.resource]

    def deleted_pods(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            (m.resource, m.content)
            for m in self.requests
            if m.operation == c.OP_DELETE and "/pod/" in m.resource
        ]

    def ops(self, resource_type: str) -> list[str]:
        return [m.operation for m in self.requests if f"/{resource_type}/" in m.resource]

    def answer(self, msg: Message) -> Message:
        ns, kind, name = msg.resource.split("/", 2)
        op, content = msg.operation, msg.content
        body: Any
        if kind in ("configmap", "secret"):
            store = self.configmaps if kind == "configmap" else self.secrets
            obj = store.get((ns, name))
            body = copy.deepcopy(obj) if obj is not None else _not_found(kind, name)
        elif kind == "serviceaccounttoken":
            body = copy.deepcopy(content)
            body["kind"], body["apiVersion"] = "TokenRequest", "authentication.k8s.io/v1"
            body["status"] = {"token": f"token-for-{ns}-{name}", "expirationTimestamp": None}
        elif kind == "node":
            if op == c.OP_INSERT and name in self.nodes:
                body = {"Object": None, "Err": _already_exists("nodes", name)}
            elif op == c.OP_INSERT:
                node = copy.deepcopy(content)
                node["metadata"]["uid"] = str(uuid.uuid4())
                self.nodes[name] = node
                body = {"Object": node, "Err": None}
            elif name in self.nodes:
                body = {"Object": self.nodes[name], "Err": None}
            else:
                body = {"Object": None, "Err": _not_found("nodes", name)}
        elif kind == "nodepatch":
            node = self.nodes.get(name)
            if node is not None:
                _merge_conditions(node, json.loads(content) if isinstance(content, str)
                                  else content)
            body = {"Object": node, "Err": None}
        elif kind == "lease":
            if op == c.OP_QUERY:
                lease = self.leases.get(name)
                body = {"Object": lease, "Err": None if lease else _not_found("leases", name)}
            else:
                lease = copy.deepcopy(content)
                rv = int(self.leases.get(name, {}).get("metadata", {}).get("resourceVersion", 0))
                lease["metadata"]["resourceVersion"] = str(rv + 1)
                self.leases[name] = lease
                body = {"Object": lease, "Err": None}
        elif kind == "podpatch":
            body = {"Object": {"metadata": {"name": name, "namespace": ns}}, "Err": None}
        elif kind == "pod" and op == c.OP_DELETE:
            body = c.CONTENT_OK
        else:
            body = _not_found(kind, name)
        resp = msg.response(body)
        resp.route.source, resp.route.group = c.MOD_EDGECONTROLLER, "resource"
        return resp

    def respond(self, msg: Message) -> Message | None:
        """A MiniCloud responder: answer edged's requests, ignore acks and keepalives."""
        if msg.operation in (c.OP_RESPONSE, c.OP_KEEPALIVE) or msg.group != c.GROUP_META:
            if msg.operation == c.OP_RESPONSE:
                self.acks.append(msg)
            return None
        self.requests.append(msg)
        return self.answer(msg)


class CloudStandIn(CloudAnswers):
    """The hub module as seen from metamanager (in place of edgehub + cloudcore)."""

    name = c.MOD_EDGEHUB
    group = c.GROUP_HUB

    def __init__(self) -> None:
        super().__init__()
        self.online = True
        self.ctx: Context | None = None

    async def run(self, ctx: Context) -> None:
        self.ctx = ctx
        while True:
            msg = await ctx.receive(self.name)
            if msg.operation == c.OP_RESPONSE:
                self.acks.append(msg)
                continue
            if not self.online:
                # edgehub refuses to send while the link is down
                ctx.send_resp(msg.response("the cloud is not connected", operation=c.OP_ERROR))
                continue
            self.requests.append(msg)
            ctx.send_resp(self.answer(msg))

    async def send_down(self, operation: str, obj: dict[str, Any], kind: str) -> None:
        """The cloud sends ``obj`` to the edge (insert/update/delete), through metamanager."""
        assert self.ctx is not None
        meta = obj["metadata"]
        msg = Message.new(
            source=c.MOD_EDGECONTROLLER,
            group="resource",
            operation=operation,
            resource=f"{meta.get('namespace', 'default')}/{kind}/{meta['name']}",
            content=copy.deepcopy(obj),
        )
        await self.ctx.send(c.MOD_METAMANAGER, msg)

    async def set_connected(self, connected: bool) -> None:
        """edgehub's notice to meta and edged; the link itself drops requests while down."""
        assert self.ctx is not None
        if connected:
            self.online = True
        msg = Message.new(
            source=c.SOURCE_EDGEHUB_NOTICE,
            group=c.GROUP_META,
            operation=c.OP_CONNECT,
            resource=c.RESOURCE_NODE_CONNECTION,
            content=c.CLOUD_CONNECTED if connected else c.CLOUD_DISCONNECTED,
        )
        for module in (c.MOD_METAMANAGER, c.MOD_EDGED):
            if module in self.ctx.modules():
                await self.ctx.send(module, msg.copy())
        if not connected:
            # Let metamanager take the notice before requests start to vanish.
            await wait_for(lambda: not self._metamanager_connected(), what="disconnect seen")
            self.online = False

    def _metamanager_connected(self) -> bool:
        return self.connected_probe() if self.connected_probe else False

    connected_probe: Callable[[], bool] | None = None


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "ErrStatus": {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    }


def _not_found(kind: str, name: str) -> dict[str, Any]:
    return _status(404, "NotFound", f'{kind} "{name}" not found')


def _already_exists(kind: str, name: str) -> dict[str, Any]:
    return _status(409, "AlreadyExists", f'{kind} "{name}" already exists')


@dataclass
class EdgeStack:
    """A beehive Context with metamanager and the cloud stand-in running."""

    ctx: Context
    cloud: CloudStandIn
    metamanager: MetaManager
    meta: MetaClient
    tasks: list[asyncio.Task[None]]

    @classmethod
    async def start(cls, db: Path, *, with_edged_queue: bool = False) -> EdgeStack:
        ctx = Context()
        ctx.add_module(c.MOD_METAMANAGER, c.GROUP_META)
        ctx.add_module(c.MOD_EDGEHUB, c.GROUP_HUB)
        if with_edged_queue:
            ctx.add_module(c.MOD_EDGED, c.GROUP_EDGED)
        mm = MetaManager(MetaSettings(data_source=str(db), remote_query_timeout=5.0))
        cloud = CloudStandIn()
        tasks = [
            asyncio.create_task(mm.start(ctx), name="metamanager"),
            asyncio.create_task(cloud.run(ctx), name="cloud"),
        ]
        cloud.connected_probe = lambda: mm.cloud_connected
        stack = cls(ctx, cloud, mm, MetaClient(ctx, timeout=10.0), tasks)
        await wait_for(lambda: mm.store is not None and cloud.ctx is not None, what="stack")
        await cloud.set_connected(True)
        return stack

    async def put(self, kind: str, obj: dict[str, Any], *, operation: str = c.OP_INSERT) -> None:
        """An object the cloud has and has sent to this edge (stored by metamanager)."""
        meta = obj["metadata"]
        key = (meta.get("namespace", "default"), meta["name"])
        if kind == "configmap":
            self.cloud.configmaps[key] = copy.deepcopy(obj)
        elif kind == "secret":
            self.cloud.secrets[key] = copy.deepcopy(obj)
        before = len(self.cloud.acks)
        await self.cloud.send_down(operation, obj, kind)
        resource = f"{key[0]}/{kind}/{key[1]}"
        await wait_for(
            lambda: any(a.resource == resource for a in self.cloud.acks[before:]),
            what=f"ack of {resource}",
        )

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.metamanager.cleanup()
        self.ctx.close()


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
            "terminationGracePeriodSeconds": 1,
            **spec,
        },
        "status": {"phase": "Pending"},
    }


def find_condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == ctype)


def container_status(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in status.get("containerStatuses") or [] if c["name"] == name)


def _merge_conditions(node: dict[str, Any], patch: dict[str, Any]) -> None:
    """Apply a status patch's conditions, merged by type, as the API server's
    strategic merge does (enough for the node's own reads back)."""
    status = node.setdefault("status", {})
    conds = {x.get("type"): x for x in status.get("conditions") or []}
    for delta in (patch.get("status") or {}).get("conditions") or []:
        conds.setdefault(delta["type"], {}).update(delta)
    status["conditions"] = list(conds.values())
