"""Real KubeEdge edgecore traffic (tests/data/captures) through the session layer
with node authorization on: everything a well-behaved edge sends is admitted and
dispatched by protocol.md 4.1; nothing is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from beehive import codec
from beehive.context import Context
from beehive.message import Message
from cloudcore.cloudhub.authorization import pod_references
from cloudcore.cloudhub.sessions import SessionManager, SessionSettings
from cloudhub_delivery.memconn import MemConnection, wait_until

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def frames(name: str) -> tuple[str, list[dict[str, Any]]]:
    items = [json.loads(line) for line in (CAPTURES / name).read_text().splitlines()]
    items = [i for i in items if i is not None]
    node = items[0]["frame"]["headers"]["Node_id"]
    return node, items


class CaptureIndex:
    """What the cluster looked like in the capture: the pods the cloud sent the node."""

    def __init__(self, node: str, items: list[dict[str, Any]]) -> None:
        self.node = node
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        for item in items:
            frame = item["frame"]
            route = frame.get("route") or {}
            if item["dir"] == "cloud->edge" and "/pod/" in route.get("resource", ""):
                content = frame.get("content")
                if isinstance(content, dict) and "spec" in content:
                    meta = content["metadata"]
                    self.pods[(meta["namespace"], meta["name"])] = content

    async def pod_bound(self, node: str, namespace: str, name: str) -> bool:
        pod = self.pods.get((namespace, name))
        return pod is not None and pod["spec"].get("nodeName") == node

    async def pod_exists(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self.pods

    async def _uses(self, node: str, namespace: str, kind: str, name: str) -> bool:
        return any(
            ns == namespace
            and pod["spec"].get("nodeName") == node
            and name in pod_references(pod)[kind]
            for (ns, _), pod in self.pods.items()
        )

    async def configmap_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._uses(node, namespace, "configmap", name)

    async def secret_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._uses(node, namespace, "secret", name)

    async def serviceaccount_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._uses(node, namespace, "serviceaccount", name)


@pytest.mark.parametrize(
    "capture", ["kubeedge-1.23-ws-pods.jsonl", "kubeedge-1.23-ws-devices.jsonl"]
)
async def test_real_edge_traffic_is_admitted_and_dispatched(capture: str) -> None:
    node, items = frames(capture)
    ctx = Context()
    ctx.add_module("edgecontroller", "edgecontroller")
    ctx.add_module("devicecontroller", "devicecontroller")
    manager = SessionManager(
        SessionSettings(keepalive_interval=None, authorization=True),
        node_index=CaptureIndex(node, items),
    )
    pump = asyncio.create_task(manager.run(ctx))
    await asyncio.wait_for(manager.wait_ready(), 5)
    conn = MemConnection(node)
    assert await manager.on_connect(conn)
    await ctx.receive("edgecontroller")  # the connected notice
    upstream = [codec.decode_obj(i["frame"]) for i in items if i["dir"] == "edge->cloud"]
    for msg in upstream:
        await manager.on_message(conn, msg)
    ping = next(
        i["frame"] for i in items if i["frame"].get("route", {}).get("operation") == "keepalive"
    )
    try:
        session = manager.session(node)
        assert session is not None
        await wait_until(lambda: session.core.queue_depth() == 0, what="writer idle")
        await manager.on_message(conn, codec.decode_obj(ping))  # a last, admitted message
        assert conn.drain() == [], "cloudhub refused or answered something the edge sent"
        expected: dict[str, list[str]] = {"edgecontroller": [], "devicecontroller": []}
        for msg in upstream:
            if msg.operation in ("keepalive", "response", ""):  # "": edgecore's close
                continue
            group = "devicecontroller" if msg.source == "twin" else "edgecontroller"
            expected[group].append(msg.msg_id)
        assert expected["edgecontroller"], "the capture has edge requests"
        for group, ids in expected.items():
            got: list[Message] = []
            while ctx.queue_depth(group):
                got.append(await ctx.receive(group))
            assert [m.msg_id for m in got] == ids
            assert all(m.resource.startswith(f"node/{node}/") for m in got)
        assert manager.connected_nodes == [node]
    finally:
        await manager.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
