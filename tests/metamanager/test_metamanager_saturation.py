"""metamanager keeps serving the cloud while edge requests wait on a silent cloud."""

from __future__ import annotations

import asyncio
from pathlib import Path

from beehive import constants as c
from beehive.context import Context
from beehive.exceptions import SyncTimeout
from beehive.message import Message
from edgecore.metaclient import MetaClient
from edgecore.metamanager.manager import MetaManager
from edgecore.metamanager.settings import MetaSettings
from fixtures.minicloud import wait_until

HUB = "websocket"


async def _answer_for(ctx: Context, parent_id: str, timeout: float) -> Message:
    """The next message the hub gets whose parent is ``parent_id`` (other traffic skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ctx.receive(HUB)
            if msg.parent_id == parent_id:
                return msg


async def test_cloud_pushes_and_notices_are_handled_while_requests_are_saturated(
    tmp_path: Path,
) -> None:
    ctx = Context()
    ctx.add_module(c.MOD_METAMANAGER, c.GROUP_META)
    ctx.add_module(HUB, "hub")  # takes every request and never answers: a silent cloud
    settings = MetaSettings(
        data_source=str(tmp_path / "edge.db"),
        remote_query_timeout=30.0,
        max_concurrent_requests=2,
        max_queued_requests=1,
    )
    manager = MetaManager(settings)
    task = asyncio.create_task(manager.start(ctx))
    waiting: list[asyncio.Task[Message]] = []
    try:
        client = MetaClient(ctx)
        # two requests take both slots (each waits 30 s for the cloud), a third waits
        for i in range(3):
            query = client.build(c.OP_QUERY, f"{c.NULL_NAMESPACE}/{c.RT_NODE}/edge-{i}")
            waiting.append(asyncio.create_task(ctx.send_sync(c.MOD_METAMANAGER, query, 60.0)))
        # both slot holders have asked the cloud
        async with asyncio.timeout(5.0):
            asked = [await ctx.receive(HUB) for _ in range(2)]
        assert all(m.operation == c.OP_QUERY for m in asked)

        push = Message.new(
            source=c.MOD_EDGECONTROLLER,
            group=c.GROUP_RESOURCE,
            operation=c.OP_INSERT,
            resource="default/pod/web",
            content={"metadata": {"name": "web", "namespace": "default", "uid": "u1"}},
        )
        await ctx.send(c.MOD_METAMANAGER, push)
        ack = await _answer_for(ctx, push.msg_id, timeout=5.0)
        assert ack.content == c.CONTENT_OK
        assert manager.store is not None
        stored = await manager.store.get("default/pod/web")
        assert stored["metadata"]["uid"] == "u1"

        notice = Message.new(
            source=c.MOD_EDGEHUB,
            group=c.GROUP_META,
            operation=c.OP_CONNECT,
            resource=c.RESOURCE_NODE_CONNECTION,
            content=c.CLOUD_CONNECTED,
        )
        await ctx.send(c.MOD_METAMANAGER, notice)
        await wait_until(lambda: manager.cloud_connected, timeout=5.0)

        # one request beyond the slots and the queue is refused at once, clearly
        extra = client.build(c.OP_QUERY, f"{c.NULL_NAMESPACE}/{c.RT_NODE}/edge-x")
        try:
            resp = await ctx.send_sync(c.MOD_METAMANAGER, extra, 5.0)
        except SyncTimeout:  # pragma: no cover - the defect this test guards
            raise AssertionError("a request over the bound was not answered at once") from None
        assert resp.operation == c.OP_ERROR
        assert resp.content["ErrStatus"]["code"] == 429
        assert resp.content["ErrStatus"]["reason"] == "TooManyRequests"
        assert not any(t.done() for t in waiting)
    finally:
        for t in waiting:
            t.cancel()
        task.cancel()
        await asyncio.gather(task, *waiting, return_exceptions=True)
        await manager.cleanup()
        ctx.close()
