"""The WebSocket transport with the real session layer and the module's config switch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from beehive import codec
from beehive.context import Context
from beehive.message import Message
from cloudcore.cloudhub.handler import SessionManager, SessionSettings
from cloudcore.cloudhub.module import node_auth_enabled
from cloudcore.cloudhub.tls import server_ssl_context
from cloudcore.cloudhub.transport.common import HubServerSettings
from cloudcore.cloudhub.transport.ws import WebSocketServer
from fixtures.hubpki import Pki, edge_headers, wait_for
from kecommon.config import parse_cloudcore_config

KEEPALIVE = 1.0


@pytest.fixture
async def hub(pki: Pki) -> AsyncIterator[tuple[WebSocketServer, Context, SessionManager]]:
    ctx = Context()
    manager = SessionManager(SessionSettings(keepalive_interval=KEEPALIVE, node_limit=2))
    pump = asyncio.create_task(manager.run(ctx))
    await asyncio.wait_for(manager.wait_ready(), 5)  # the pump has registered its module
    server = WebSocketServer(
        HubServerSettings(address="127.0.0.1", port=0),
        ssl_context=server_ssl_context(pki.server, pki.ca.cert),
        ca_cert=pki.ca.cert,
        handler=manager,
    )
    await server.start()
    yield server, ctx, manager
    await server.stop()
    await manager.close()
    pump.cancel()
    ctx.close()


def keepalive() -> Message:
    return Message.new(
        source="websocket",
        group="resource",
        operation="keepalive",
        resource="node",
        content="ping",
    )


async def dial(server: WebSocketServer, pki: Pki, node: str) -> Any:
    return await connect(
        f"wss://localhost:{server.port}/p/{node}/events",
        ssl=pki.client_context(node),
        additional_headers=edge_headers(node),
    )


async def closed(ws: Any, timeout: float = 10) -> Any:
    with pytest.raises(ConnectionClosed) as err:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    assert err.value.rcvd is not None
    return err.value.rcvd


async def test_keepalives_keep_the_session_and_silence_ends_it(
    hub: tuple[WebSocketServer, Context, SessionManager], pki: Pki
) -> None:
    server, _, _ = hub
    async with (
        await dial(server, pki, "alive") as alive,
        await dial(server, pki, "silent") as silent,
    ):
        loop = asyncio.get_running_loop()
        start = loop.time()
        while loop.time() - start < 2.5 * KEEPALIVE:
            await alive.send(codec.encode(keepalive()))
            await asyncio.sleep(KEEPALIVE / 4)
        frame = await closed(silent, timeout=1)
        assert frame.code == 4002
        await alive.send(codec.encode(keepalive()))
        await alive.ping()  # still open


async def test_reconnect_replaces_the_old_session(
    hub: tuple[WebSocketServer, Context, SessionManager], pki: Pki
) -> None:
    server, ctx, manager = hub
    old = await dial(server, pki, "edge-r")
    await old.send(codec.encode(keepalive()))
    await wait_for(lambda: manager.session("edge-r") is not None)
    first = manager.session("edge-r")
    async with await dial(server, pki, "edge-r") as new:
        await new.send(codec.encode(keepalive()))
        frame = await closed(old)
        assert frame.code == 4000
        await wait_for(
            lambda: (s := manager.session("edge-r")) is not None and s is not first and not s.ended,
            what="the new session",
        )
        # Downstream traffic reaches the new connection.
        msg = Message.new(
            source="edgecontroller",
            group="resource",
            operation="update",
            resource="node/edge-r/default/configmap/c",
            resource_version="5",
            content={
                "metadata": {
                    "name": "c",
                    "namespace": "default",
                    "uid": "u-1",
                    "resourceVersion": "5",
                }
            },
        )
        await ctx.send("cloudhub", msg)
        got = codec.decode(await asyncio.wait_for(new.recv(), 5))
        assert got.resource == "default/configmap/c" and got.resource_version == "5"


async def test_node_limit_refusal_reaches_the_edge(
    hub: tuple[WebSocketServer, Context, SessionManager], pki: Pki
) -> None:
    server, _, _ = hub
    async with (
        await dial(server, pki, "n1"),
        await dial(server, pki, "n2"),
        await dial(server, pki, "n3") as third,
    ):
        frame = await closed(third)
    assert frame.code == 4001


def test_one_switch_for_node_authentication() -> None:
    base = "apiVersion: cloudcore.config.kubeedge.io/v1alpha1\nkind: CloudCore\n"
    on = parse_cloudcore_config(base)
    assert node_auth_enabled(on.modules.cloud_hub) is True
    off = parse_cloudcore_config(
        base
        + "modules:\n  cloudHub:\n    authorization:\n      modes:\n"
        + "      - node:\n          enable: false\n"
    )
    assert node_auth_enabled(off.modules.cloud_hub) is False
