"""Our edgehub against our cloudhub's real servers (HTTPS bootstrap + WebSocket).

The cloud side is cloudcore's CertStore, HttpsServer and WebSocketServer with
node authentication on; a recording ConnectionHandler stands in for the
session layer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beehive.message import Message
from edgecore.edgehub.settings import EdgeHubSettings
from fixtures.hubpki import LocalCloud, RecordingHandler, start_local_cloud
from fixtures.minicloud import EdgeRunner, Probe, wait_until

Cloud = LocalCloud


@pytest.fixture
async def cloudhub(tmp_path: Path) -> AsyncIterator[Cloud]:
    cloud = await start_local_cloud(tmp_path / "cloud", RecordingHandler())
    try:
        yield cloud
    finally:
        await cloud.stop()


def _settings(cloud: Cloud, tmp_path: Path, node: str) -> EdgeHubSettings:
    return EdgeHubSettings(
        node_name=node,
        http_server=f"https://127.0.0.1:{cloud.https.port}",
        ws_server=f"127.0.0.1:{cloud.ws.port}",
        token=cloud.store.token,
        bootstrap_token_file=None,
        tls_ca_file=tmp_path / "edge" / "rootCA.crt",
        tls_cert_file=tmp_path / "edge" / "server.crt",
        tls_private_key_file=tmp_path / "edge" / "server.key",
        reconnect_initial_backoff=0.05,
        reconnect_max_backoff=0.2,
        handshake_timeout=5,
    )


async def test_bootstrap_connect_and_ack_with_our_cloudhub(cloudhub: Cloud, tmp_path: Path) -> None:
    edged = Probe("edged", "edged")
    settings = _settings(cloudhub, tmp_path, "edge-real")
    async with EdgeRunner(settings, tmp_path / "edge.db", probes=[edged]) as edge:
        await wait_until(lambda: cloudhub.handler.of("edge-real"), timeout=10)
        (conn,) = cloudhub.handler.connections
        assert conn.node_id == "edge-real"
        first = cloudhub.handler.of("edge-real")[0]
        assert (first.source, first.group, first.operation, first.resource, first.content) == (
            "websocket",
            "resource",
            "keepalive",
            "node",
            "ping",
        )
        await wait_until(lambda: edge.meta.cloud_connected)
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        }
        push = Message.new(
            source="edgecontroller",
            group="resource",
            operation="insert",
            resource="default/pod/p",
            content=pod,
            resource_version="9",
        )
        await conn.write(push)
        ack = await wait_until(
            lambda: next(
                (m for m in cloudhub.handler.of("edge-real") if m.parent_id == push.msg_id), None
            )
        )
        assert (ack.operation, ack.content, ack.source, ack.group, ack.resource) == (
            "response",
            "OK",
            "edgecontroller",
            "resource",
            "default/pod/p",
        )
        await wait_until(lambda: edged.messages)
        assert edged.messages[0].content == pod
        assert await edge.meta.store.get("default/pod/p") == pod


async def test_a_certificate_of_another_node_is_not_reused(cloudhub: Cloud, tmp_path: Path) -> None:
    # a certificate issued for one node cannot open a session as another node
    settings = _settings(cloudhub, tmp_path, "node-a")
    async with EdgeRunner(settings) as edge:
        await wait_until(edge.hub.connected.is_set, timeout=10)
    spoof = _settings(cloudhub, tmp_path, "node-b")
    spoof.token = ""
    # node-b has no certificate of its own: the CN check makes it bootstrap,
    # and without a token that is a clear, permanent error
    from edgecore.edgehub import bootstrap
    from edgecore.edgehub.errors import InvalidToken

    with pytest.raises(InvalidToken, match="no client certificate and no bootstrap token"):
        await bootstrap.ensure_certificates(spoof)


async def test_rotation_against_our_https_server(cloudhub: Cloud, tmp_path: Path) -> None:
    from cryptography import x509

    from edgecore.edgehub import bootstrap

    settings = _settings(cloudhub, tmp_path, "edge-rot")
    await bootstrap.ensure_certificates(settings)
    before = x509.load_pem_x509_certificate(settings.tls_cert_file.read_bytes())
    settings.token = ""  # rotation is authenticated by the client certificate alone
    info = await bootstrap.rotate(settings)
    after = x509.load_pem_x509_certificate(settings.tls_cert_file.read_bytes())
    assert after.serial_number != before.serial_number
    assert info.common_name == "system:node:edge-rot"
    assert bootstrap.load_client_cert(settings) is not None
