"""The cloudhub QUIC server over real UDP sockets (docs/protocol-quic.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aioquic.quic import events

from beehive.message import Message
from cloudcore.cloudhub.transport.common import HubServerSettings
from cloudcore.cloudhub.transport.quic import (
    CODE_OVERFLOW,
    MAX_CONTROL_MESSAGES,
    QuicHubServer,
    check_aioquic_support,
)
from fixtures.hubpki import Pki, RecordingHandler, edge_headers, wait_for
from fixtures.hubquic import EdgeQuicClient, client_config, quic_edge
from kecommon import certs
from kecommon import quicframing as qf

QuicFactory = Callable[..., Awaitable[QuicHubServer]]


@pytest.fixture
async def quic_server(pki: Pki, recording_handler: RecordingHandler) -> AsyncIterator[QuicFactory]:
    started: list[QuicHubServer] = []

    async def make(**overrides: Any) -> QuicHubServer:
        server = QuicHubServer(
            HubServerSettings(address="127.0.0.1", port=0, **overrides),
            server_cert=pki.server,
            ca_cert=pki.ca.cert,
            handler=recording_handler,
        )
        await server.start()
        started.append(server)
        return server

    yield make
    for s in started:
        await s.stop()


def keepalive(content: Any = "ping") -> Message:
    return Message.new(
        source="websocket",
        group="resource",
        operation="keepalive",
        resource="node",
        content=content,
    )


def config_for(pki: Pki, node: str | None, **kw: Any) -> Any:
    cert = pki.node_cert(node, **kw) if node is not None else None
    return client_config(certs.cert_to_pem(pki.ca.cert), cert)


async def ended(client: EdgeQuicClient) -> events.ConnectionTerminated:
    return await asyncio.wait_for(asyncio.shield(client.terminated), 5)


def test_aioquic_has_the_hooks_we_need() -> None:
    check_aioquic_support()


async def test_session_both_directions(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await quic_server()
    async with quic_edge(server.port, config_for(pki, "q1")) as edge:
        reply = await edge.session(edge_headers("q1"))
        assert (reply.operation, reply.content) == ("response", "ack")
        await wait_for(lambda: recording_handler.connections, what="on_connect")
        conn = recording_handler.connections[0]
        assert (conn.node_id, conn.project_id, conn.transport) == ("q1", "e632aba927ea", "quic")
        ka = keepalive()
        ka.header.resource_version = "42"  # survives, unlike viaduct's protobuf
        edge.send(ka)
        await wait_for(lambda: recording_handler.of("q1"), what="the keepalive")
        assert recording_handler.of("q1")[0] == ka
        down = Message.new(
            source="edgecontroller",
            group="resource",
            operation="update",
            resource="default/configmap/c",
            content={"data": {"a": "b"}},
            resource_version="7",
        )
        await conn.write(down)
        got = await asyncio.wait_for(edge.received.get(), 5)
        assert got == down
        # Further control messages are acked, as viaduct does.
        edge.send_raw(edge.control_id, qf.encode_message(keepalive()))  # type: ignore[arg-type]
        assert (await asyncio.wait_for(edge.control_replies.get(), 5)).content == "ack"
        edge.close()
    await wait_for(lambda: recording_handler.disconnects, what="on_disconnect")
    assert recording_handler.disconnects[0][0] == "q1"
    with pytest.raises(ConnectionError):
        await conn.write(down)


async def test_client_without_certificate_is_refused(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await quic_server()
    async with quic_edge(server.port, config_for(pki, None)) as edge:
        edge.send_header(edge_headers("q2"))
        term = await ended(edge)
    assert term.error_code == qf.CODE_REFUSED
    assert "client certificate signed by the KubeEdge CA is required" in term.reason_phrase
    assert recording_handler.connections == []


async def test_certificate_from_another_ca_is_refused_while_others_work(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await quic_server()
    async with quic_edge(server.port, config_for(pki, "good")) as good:
        assert (await good.session(edge_headers("good"))).content == "ack"
        async with quic_edge(server.port, config_for(pki, "q3", ca=pki.other_ca)) as bad:
            bad.send_header(edge_headers("q3"))
            term = await ended(bad)
        assert term.error_code == qf.CODE_REFUSED
        assert "not signed by the KubeEdge CA" in term.reason_phrase
        good.send(keepalive())
        await wait_for(lambda: recording_handler.of("good"))
    assert [c.node_id for c in recording_handler.connections] == ["good"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (edge_headers("q4", use=None), "missing ConnectionUse"),
        ({"Connectionuse": "msg"}, "missing node_id"),
        (edge_headers("someone-else"), "does not match 'system:node:someone-else'"),
    ],
)
async def test_bad_headers_get_nack_and_a_reason(
    quic_server: QuicFactory,
    pki: Pki,
    recording_handler: RecordingHandler,
    headers: dict[str, str],
    reason: str,
) -> None:
    server = await quic_server()
    async with quic_edge(server.port, config_for(pki, "q4")) as edge:
        reply = await edge.session(headers)
        assert reply.content == "nack"
        term = await ended(edge)
    assert term.error_code == qf.CODE_REFUSED and reason in term.reason_phrase
    assert recording_handler.connections == []


async def test_node_auth_off(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await quic_server(node_auth=False)
    async with quic_edge(server.port, config_for(pki, "q5", cn_node="other")) as edge:
        assert (await edge.session(edge_headers("q5"))).content == "ack"
        await wait_for(lambda: recording_handler.connections)


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (qf.encode_frame(b"{oops"), qf.CODE_MALFORMED, "not a message"),
        (b"\x09\x09\x09\x09\x01\x00\x00\x00\x00\x01x", qf.CODE_MALFORMED, "packer version"),
        (qf.encode_frame(b"{}")[:6] + (10**6).to_bytes(4, "big"), qf.CODE_TOO_BIG, "exceeds"),
    ],
)
async def test_bad_frames_close_only_that_connection(
    quic_server: QuicFactory,
    pki: Pki,
    recording_handler: RecordingHandler,
    data: bytes,
    code: int,
    reason: str,
) -> None:
    server = await quic_server(max_frame_size=4096)
    async with (
        quic_edge(server.port, config_for(pki, "ok")) as good,
        quic_edge(server.port, config_for(pki, "q6")) as bad,
    ):
        assert (await good.session(edge_headers("ok"))).content == "ack"
        assert (await bad.session(edge_headers("q6"))).content == "ack"
        bad.send_raw(bad.msg_id, data)  # type: ignore[arg-type]
        term = await ended(bad)
        assert term.error_code == code and reason in term.reason_phrase
        good.send(keepalive())
        await wait_for(lambda: recording_handler.of("ok"))


async def test_msg_stream_before_header_is_refused(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await quic_server()
    async with quic_edge(server.port, config_for(pki, "q7")) as edge:
        edge.send_header(edge_headers("q7", use=None))  # refused header...
        await ended(edge)
    async with quic_edge(server.port, config_for(pki, "q7")) as edge:
        edge.control_id = edge._quic.get_next_available_stream_id()
        edge.send_raw(edge.control_id, b"")  # control stream without a header yet
        edge.open_msg_stream()
        edge.send(keepalive())
        term = await ended(edge)
    assert term.error_code == qf.CODE_MALFORMED
    assert recording_handler.messages == []


async def test_session_layer_close_codes_map_to_quic(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await quic_server()
    async with quic_edge(server.port, config_for(pki, "q8")) as edge:
        await edge.session(edge_headers("q8"))
        await wait_for(lambda: recording_handler.connections)
        await recording_handler.connections[0].close(4000, "replaced by a new connection")
        term = await ended(edge)
    assert (term.error_code, term.reason_phrase) == (
        qf.CODE_REPLACED,
        "replaced by a new connection",
    )
    await wait_for(lambda: recording_handler.disconnects)


async def test_refused_session(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    recording_handler.accept = False
    server = await quic_server()
    async with quic_edge(server.port, config_for(pki, "q9")) as edge:
        await edge.session(edge_headers("q9"))
        term = await ended(edge)
    assert (term.error_code, term.reason_phrase) == (qf.CODE_NODE_LIMIT, "node limit reached")


async def test_flood_overflows_the_inbox_and_closes_that_node_only(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    async def slow(conn: Any, msg: Message) -> None:
        if conn.node_id == "flood":
            await asyncio.sleep(0.05)

    recording_handler.on_msg = slow
    server = await quic_server(max_queue=1)  # inbox of 64 messages
    async with (
        quic_edge(server.port, config_for(pki, "flood")) as flood,
        quic_edge(server.port, config_for(pki, "calm")) as calm,
    ):
        assert (await flood.session(edge_headers("flood"))).content == "ack"
        assert (await calm.session(edge_headers("calm"))).content == "ack"
        for _ in range(500):
            flood.send(keepalive())
        term = await ended(flood)
        assert term.error_code == 8 and "overflow" in term.reason_phrase
        calm.send(keepalive())
        await wait_for(lambda: recording_handler.of("calm"))


async def test_wrong_alpn_is_refused(quic_server: QuicFactory, pki: Pki) -> None:
    server = await quic_server()
    cert = pki.node_cert("q10")
    config = client_config(certs.cert_to_pem(pki.ca.cert), cert, alpn="h3")
    with pytest.raises(ConnectionError):
        async with quic_edge(server.port, config):
            pass


async def test_writes_wait_for_acks_and_time_out_on_a_silent_peer(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await quic_server(write_timeout=1.0)
    async with quic_edge(server.port, config_for(pki, "q11")) as edge:
        assert (await edge.session(edge_headers("q11"))).content == "ack"
        await wait_for(lambda: recording_handler.connections)
        conn = recording_handler.connections[0]
        big = Message.new(
            source="edgecontroller",
            group="resource",
            operation="update",
            resource="default/configmap/c",
            content="x" * (256 << 10),
        )
        # A reading peer acknowledges: many writes complete, more than the high-water mark.
        for _ in range(16):
            await asyncio.wait_for(conn.write(big), 5)
        for _ in range(16):
            await asyncio.wait_for(edge.received.get(), 5)
        # A peer that stops reading datagrams acknowledges nothing: the writer
        # blocks, then the connection is closed.
        edge._transport.pause_reading()  # type: ignore[union-attr]
        with pytest.raises(ConnectionError, match="timed out"):
            async with asyncio.timeout(20):
                while True:
                    await conn.write(big)
        edge._transport.resume_reading()  # type: ignore[union-attr]
    await wait_for(lambda: recording_handler.disconnects, what="on_disconnect")


async def test_control_stream_flood_closes_that_connection(
    quic_server: QuicFactory, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await quic_server()
    async with quic_edge(server.port, config_for(pki, "qc")) as edge:
        assert (await edge.session(edge_headers("qc"))).content == "ack"
        await wait_for(lambda: recording_handler.connections, what="on_connect")
        # up to the cap, each later control message is acked, as viaduct does
        for _ in range(MAX_CONTROL_MESSAGES):
            edge.send_raw(edge.control_id, qf.encode_message(keepalive()))  # type: ignore[arg-type]
            reply = await asyncio.wait_for(edge.control_replies.get(), 5)
            assert reply.content == "ack"
        # one more is a flood: the connection is closed, not answered forever
        edge.send_raw(edge.control_id, qf.encode_message(keepalive()))  # type: ignore[arg-type]
        term = await ended(edge)
    assert term.error_code == CODE_OVERFLOW
    assert "control stream flood" in term.reason_phrase
    await wait_for(lambda: recording_handler.disconnects, what="on_disconnect")
