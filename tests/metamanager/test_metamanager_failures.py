"""metamanager answers every edge request, even one that hits an unexpected failure."""

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
from edgecore.metamanager.store import MetaStore


async def test_a_request_that_fails_unexpectedly_is_answered_with_an_error(
    tmp_path: Path,
) -> None:
    ctx = Context()
    ctx.add_module(c.MOD_METAMANAGER, c.GROUP_META)
    manager = MetaManager(MetaSettings(data_source=str(tmp_path / "edge.db")))
    task = asyncio.create_task(manager.start(ctx))
    try:
        # The cloud stored a pod whose content is not an object: listing the
        # pods then trips over it. The caller must get an error at once, not
        # wait for its timeout while the failure goes unreported.
        await ctx.send(
            c.MOD_METAMANAGER,
            Message.new(
                source=c.MOD_EDGECONTROLLER,
                group=c.GROUP_RESOURCE,
                operation=c.OP_INSERT,
                resource="default/pod/odd",
                content=["not", "a", "pod"],
            ),
        )
        # edged's namespaced pod list (the resource KubeEdge's podlist query uses)
        query = MetaClient(ctx).build(c.OP_QUERY, f"default/{c.RT_PODLIST}")
        try:
            resp = await ctx.send_sync(c.MOD_METAMANAGER, query, 5.0)
        except SyncTimeout:  # pragma: no cover - the defect this test guards
            raise AssertionError("metamanager never answered") from None
        assert resp.parent_id == query.msg_id
        assert resp.operation == c.OP_ERROR or resp.content == []
        if resp.operation == c.OP_ERROR:
            assert resp.content["ErrStatus"]["code"] == 500
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await manager.cleanup()
        ctx.close()


def test_metaclient_waits_longer_than_metamanager_asks_the_cloud() -> None:
    # metamanager answers from its store when the cloud is silent for
    # remoteQueryTimeout; a client giving up at the same moment never sees
    # that answer (both defaulted to 60 s).
    ctx = Context()
    assert MetaClient(ctx).timeout > MetaSettings().remote_query_timeout


async def test_a_silent_cloud_is_answered_from_the_store(tmp_path: Path) -> None:
    ctx = Context()
    ctx.add_module(c.MOD_METAMANAGER, c.GROUP_META)
    ctx.add_module("websocket", "hub")  # a hub that takes requests and never answers
    remote = 0.3
    manager = MetaManager(
        MetaSettings(data_source=str(tmp_path / "edge.db"), remote_query_timeout=remote)
    )
    manager.store = await MetaStore.open(tmp_path / "edge.db")
    task = asyncio.create_task(manager.start(ctx))
    try:
        await manager.store.put("null/node/edge-1", c.RT_NODE, {"metadata": {"name": "edge-1"}})
        client = MetaClient(ctx, remote_query_timeout=remote)
        node = await client.get_node("edge-1")
        assert node["metadata"]["name"] == "edge-1"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await manager.cleanup()
        ctx.close()

