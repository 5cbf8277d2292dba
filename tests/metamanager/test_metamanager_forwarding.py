"""A slow edged never stalls metamanager; acked objects are never lost (coalesced)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from beehive.context import Context
from beehive.message import Message
from edgecore.metamanager.forwarding import Forwarder
from fixtures.minicloud import EdgeRunner, MiniCloud, edge_settings, wait_until


class Gate:
    """An edged stand-in that reads only when the gate opens."""

    name = "edged"
    group = "edged"

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.messages: list[Message] = []

    def enabled(self, config: Any) -> bool:
        return True

    async def start(self, ctx: Context) -> None:
        while True:
            await self.open.wait()
            msg = await ctx.receive(self.name)
            if msg.resource != "node/connection":
                self.messages.append(msg)

    async def cleanup(self) -> None:
        return None


def _pod(name: str, version: int) -> Message:
    return Message.new(
        source="edgecontroller",
        group="resource",
        operation="update",
        resource=f"default/pod/{name}",
        resource_version=str(version),
        content={
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": name,
                "resourceVersion": str(version),
            },
        },
    )


async def test_slow_edged_does_not_stall_acks(minicloud: MiniCloud, tmp_path: Path) -> None:
    gate = Gate()
    async with EdgeRunner(
        edge_settings(minicloud, tmp_path), tmp_path / "e.db", probes=[gate], queue_size=4
    ) as edge:  # type: ignore[list-item]
        await wait_until(lambda: edge.meta.cloud_connected)
        pushes = [_pod(f"p{i % 3}", i) for i in range(30)]
        for msg in pushes:
            await minicloud.send(msg)
        # every push is stored and acked although edged reads nothing
        await minicloud.wait_for(
            lambda: {m.parent_id for m in minicloud.received} >= {m.msg_id for m in pushes},
            timeout=10,
        )
        gate.open.set()
        # edged ends with the latest version of every pod
        await wait_until(
            lambda: (
                {m.resource: m.resource_version for m in gate.messages}
                == {"default/pod/p0": "27", "default/pod/p1": "28", "default/pod/p2": "29"}
            )
        )


async def test_forwarder_coalesces_by_resource() -> None:
    ctx = Context(queue_size=1)
    ctx.add_module("edged", "edged")
    fwd = Forwarder(ctx, "edged")
    for i in range(5):
        fwd.put(_pod("a", i))
    fwd.put(_pod("b", 1))
    assert len(fwd) == 2 and fwd.coalesced == 4
    task = asyncio.create_task(fwd.run())
    got = [await ctx.receive("edged"), await ctx.receive("edged")]
    assert [(m.resource, m.resource_version) for m in got] == [
        ("default/pod/a", "4"),
        ("default/pod/b", "1"),
    ]
    task.cancel()
