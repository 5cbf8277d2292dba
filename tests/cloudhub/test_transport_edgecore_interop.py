"""Our edgecore's edgehub client (bootstrap, rotation, WS, QUIC) against our cloudhub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from beehive.message import Message
from edgecore.edgehub import bootstrap
from edgecore.edgehub.settings import EdgeHubSettings
from edgecore.edgehub.transport.quic import connect_quic
from edgecore.edgehub.transport.ws import connect_websocket
from fixtures.hubpki import LocalCloud, RecordingHandler, start_local_cloud, wait_for


@pytest.fixture
async def cloud(tmp_path: Path, recording_handler: RecordingHandler) -> AsyncIterator[LocalCloud]:
    local = await start_local_cloud(tmp_path / "cloud", recording_handler, with_quic=True)
    yield local
    await local.stop()


def edge_settings(cloud: LocalCloud, tmp_path: Path, node: str) -> EdgeHubSettings:
    edge = tmp_path / node
    return EdgeHubSettings(
        node_name=node,
        http_server=f"https://127.0.0.1:{cloud.https.port}",
        ws_server=f"127.0.0.1:{cloud.ws.port}",
        quic_server=f"127.0.0.1:{cloud.quic.port}",
        token=cloud.store.token,
        bootstrap_token_file=None,
        tls_ca_file=edge / "ca" / "rootCA.crt",
        tls_cert_file=edge / "certs" / "server.crt",
        tls_private_key_file=edge / "certs" / "server.key",
    )


def keepalive() -> Message:
    return Message.new(
        source="websocket",
        group="resource",
        operation="keepalive",
        resource="node",
        content="ping",
    )


async def test_edgecore_bootstraps_rotates_and_talks_both_transports(
    cloud: LocalCloud, tmp_path: Path, recording_handler: RecordingHandler
) -> None:
    settings = edge_settings(cloud, tmp_path, "edge-interop")
    info = await bootstrap.bootstrap(settings)
    assert info.common_name == "system:node:edge-interop"
    first = settings.tls_cert_file.read_bytes()
    # Rotation authenticates with the current certificate, no token.
    await bootstrap.rotate(replace(settings, token=""))
    assert settings.tls_cert_file.read_bytes() != first

    for connect, transport in ((connect_websocket, "websocket"), (connect_quic, "quic")):
        link = await connect(settings)
        try:
            await link.send(keepalive())
            await wait_for(
                lambda t=transport: any(c.transport == t for c in recording_handler.connections),
                what=f"a {transport} connection",
            )
            conn = [c for c in recording_handler.connections if c.transport == transport][-1]
            assert conn.node_id == "edge-interop"
            down = Message.new(
                source="edgecontroller",
                group="resource",
                operation="update",
                resource="default/configmap/c",
                content={"k": transport},
                resource_version="9",
            )
            await conn.write(down)
            got = await asyncio.wait_for(link.recv(), 5)
            assert got == down
        finally:
            await link.close()
    await wait_for(lambda: len(recording_handler.disconnects) == 2, what="both disconnects")
    assert [m.operation for m in recording_handler.of("edge-interop")] == ["keepalive"] * 2
