"""The cloudhub WebSocket server over real TLS sockets (protocol.md 3.2-3.5)."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from beehive import codec
from beehive.message import Message
from fixtures.hubpki import Pki, RecordingHandler, edge_headers, wait_for


def keepalive() -> Message:
    return Message.new(
        source="websocket",
        group="resource",
        operation="keepalive",
        resource="node",
        content="ping",
    )


async def dial(
    server: Any,
    pki: Pki,
    node: str | None,
    *,
    headers: dict[str, str] | None = None,
    ctx: ssl.SSLContext | None = None,
    **kw: Any,
) -> ClientConnection:
    return await connect(
        f"wss://localhost:{server.port}/e632aba927ea/{node}/events",
        ssl=ctx or pki.client_context(node),
        additional_headers=headers if headers is not None else edge_headers(node or ""),
        open_timeout=5,
        **kw,
    )


async def test_edge_connects_sends_and_receives(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server()
    async with await dial(server, pki, "edge-a") as ws:
        await wait_for(lambda: recording_handler.connections, what="on_connect")
        conn = recording_handler.connections[0]
        assert (conn.node_id, conn.project_id, conn.transport) == (
            "edge-a",
            "e632aba927ea",
            "websocket",
        )
        ka = keepalive()
        await ws.send(codec.encode(ka))
        await wait_for(lambda: recording_handler.of("edge-a"), what="the keepalive")
        assert recording_handler.of("edge-a")[0] == ka
        # Binary frames are accepted too (gorilla's ReadJSON takes both).
        await ws.send(codec.encode(keepalive()).rstrip())
        await wait_for(lambda: len(recording_handler.of("edge-a")) == 2)
        down = Message.new(
            source="edgecontroller",
            group="resource",
            operation="insert",
            resource="default/pod/p1",
            content={"metadata": {"name": "p1"}},
        )
        await conn.write(down)
        frame = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(frame, str)  # text frames, as Go's WriteJSON
        assert frame.encode() == codec.encode(down) and frame.endswith("\n")
    await wait_for(lambda: recording_handler.disconnects, what="on_disconnect")
    assert recording_handler.disconnects[0][0] == "edge-a"
    with pytest.raises(ConnectionError):
        await conn.write(down)


async def test_any_path_and_lowercase_headers(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server()
    ctx = pki.client_context("edge-b")
    async with await connect(
        f"wss://localhost:{server.port}/whatever",
        ssl=ctx,
        additional_headers={"node_id": "edge-b", "project_id": "p", "ConnectionUse": "msg"},
    ):
        await wait_for(lambda: recording_handler.connections)
    assert recording_handler.connections[0].node_id == "edge-b"


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        (edge_headers("edge-c", use=None), 400, "missing ConnectionUse"),
        (edge_headers("edge-c", use="str"), 400, "unsupported ConnectionUse 'str'"),
        ({"Connectionuse": "msg"}, 400, "missing node_id"),
        (edge_headers("Edge/C"), 400, "not a valid node name"),
        (edge_headers("edge-other"), 403, "does not match 'system:node:edge-other'"),
    ],
)
async def test_refused_upgrades_say_why(
    ws_server: Any,
    pki: Pki,
    recording_handler: RecordingHandler,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    server = await ws_server()
    with pytest.raises(InvalidStatus) as err:
        await dial(server, pki, "edge-c", headers=headers)
    assert err.value.response.status_code == status
    assert reason in err.value.response.body.decode()
    assert recording_handler.connections == []


async def test_node_auth_off_trusts_node_id(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server(node_auth=False)
    ctx = pki.client_context("edge-d", cn_node="someone-else")
    async with await dial(server, pki, "edge-d", ctx=ctx):
        await wait_for(lambda: recording_handler.connections)
    assert recording_handler.connections[0].node_id == "edge-d"


async def _tls_refused(server: Any, ctx: ssl.SSLContext) -> None:
    # With TLS 1.3 the client learns of a rejected certificate on its first read,
    # so the refusal surfaces either in the handshake or as a closed connection.
    with pytest.raises((ssl.SSLError, ConnectionError, ConnectionClosed, InvalidMessage, OSError)):
        async with await connect(
            f"wss://localhost:{server.port}/",
            ssl=ctx,
            additional_headers=edge_headers("edge-e"),
            open_timeout=5,
        ) as ws:
            await asyncio.wait_for(ws.recv(), 5)


async def test_certificate_from_another_ca_is_refused_while_others_work(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server()
    async with await dial(server, pki, "good") as good:
        await _tls_refused(server, pki.client_context("edge-e", ca=pki.other_ca))
        await _tls_refused(server, pki.client_context(None))  # no client certificate
        await good.send(codec.encode(keepalive()))
        await wait_for(lambda: recording_handler.of("good"))
    assert [c.node_id for c in recording_handler.connections] == ["good"]


async def test_malformed_json_closes_only_that_connection(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server()
    async with await dial(server, pki, "good") as good, await dial(server, pki, "bad") as bad:
        await bad.send('{"header": {"msg_id": 5}}')
        with pytest.raises(ConnectionClosed) as err:
            await asyncio.wait_for(bad.recv(), 5)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1007
        assert "msg_id must be a string" in err.value.rcvd.reason
        await good.send(codec.encode(keepalive()))
        await wait_for(lambda: recording_handler.of("good"))
    await wait_for(lambda: len(recording_handler.disconnects) == 2)
    assert dict(recording_handler.disconnects)["bad"].startswith("malformed message")


async def test_not_json_at_all_closes_1007(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server()
    async with await dial(server, pki, "bad") as bad:
        await bad.send("this is not json")
        with pytest.raises(ConnectionClosed) as err:
            await asyncio.wait_for(bad.recv(), 5)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1007
        assert "not valid JSON" in err.value.rcvd.reason


async def test_oversized_frame_closes_1009(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server(max_frame_size=4096)
    async with (
        await dial(server, pki, "good") as good,
        await dial(server, pki, "big", max_size=None) as big,
    ):
        msg = keepalive()
        msg.content = "x" * 5000
        await big.send(codec.encode(msg))
        with pytest.raises(ConnectionClosed) as err:
            await asyncio.wait_for(big.recv(), 5)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1009
        await good.send(codec.encode(keepalive()))
        await wait_for(lambda: recording_handler.of("good"))
    assert recording_handler.of("big") == []


async def test_frames_much_larger_than_the_tls_read_buffer_arrive_whole(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    # The server shrinks asyncio's per-connection TLS read buffer (256 KiB -> 16 KiB, the
    # dominant per-node memory cost, docs/performance.md); big frames must still arrive whole.
    import asyncio.sslproto

    from cloudcore.cloudhub.tls import TLS_READ_BUFFER

    server = await ws_server()
    assert asyncio.sslproto.SSLProtocol.max_size <= TLS_READ_BUFFER
    async with await dial(server, pki, "edge-big", max_size=None) as ws:
        up = keepalive()
        up.content = "u" * (2 * 1024 * 1024)
        await ws.send(codec.encode(up))
        await wait_for(lambda: recording_handler.of("edge-big"), what="the 2 MiB frame")
        assert recording_handler.of("edge-big")[0] == up
        conn = recording_handler.connections[0]
        down = Message.new(
            source="edgecontroller",
            group="resource",
            operation="update",
            resource="default/configmap/big",
            content={"data": {"k": "d" * (2 * 1024 * 1024)}},
        )
        await conn.write(down)
        frame = await asyncio.wait_for(ws.recv(), 10)
        assert codec.decode(frame) == down


async def test_concurrent_large_frames_from_many_nodes_stay_intact(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    # The server's TLS connections read into one shared buffer (tls.share_tls_read_buffer):
    # frames of several nodes, each many TLS records long and interleaved on the wire, must
    # each arrive exactly as sent.
    server = await ws_server()
    nodes = [f"edge-mix-{i}" for i in range(6)]
    conns = [await dial(server, pki, node, max_size=None) for node in nodes]
    try:
        sent: dict[str, list[Message]] = {node: [] for node in nodes}

        async def pump(node: str, ws: ClientConnection) -> None:
            for round_ in range(3):
                msg = keepalive()
                # Distinct per node and round, not a repeated byte: a byte taken from
                # another connection's records would change the content.
                msg.content = base64.b64encode(os.urandom(150_000 + round_ * 7_001)).decode()
                sent[node].append(msg)
                await ws.send(codec.encode(msg))

        await asyncio.gather(*(pump(n, ws) for n, ws in zip(nodes, conns, strict=True)))
        for node in nodes:
            await wait_for(lambda n=node: len(recording_handler.of(n)) == 3, what=node)
            assert recording_handler.of(node) == sent[node]
    finally:
        for ws in conns:
            await ws.close()


async def test_flood_from_one_node_does_not_starve_another(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    """A node writing 64 KiB frames as fast as it can, to a slow session layer.

    The quiet node's messages still get through promptly, the flooder is held
    back by TCP (it cannot get far ahead of what cloudhub has handled, so
    cloudhub buffers only a few frames), and nothing is lost.
    """

    async def slow_for_flooder(conn: Any, msg: Message) -> None:
        if conn.node_id == "flood":
            await asyncio.sleep(0.002)

    recording_handler.on_msg = slow_for_flooder
    server = await ws_server()
    big = keepalive()
    big.content = "x" * (64 << 10)
    frame = codec.encode(big)
    async with (
        await dial(server, pki, "flood") as flood,
        await dial(server, pki, "quiet") as quiet,
    ):
        stop = asyncio.Event()
        sent = 0

        async def flooder() -> None:
            nonlocal sent
            while not stop.is_set():
                await flood.send(frame)
                sent += 1

        task = asyncio.create_task(flooder())
        await wait_for(lambda: len(recording_handler.of("flood")) > 50, what="the flood")
        latencies = []
        for i in range(5):
            t0 = time.monotonic()
            await quiet.send(codec.encode(keepalive()))
            await wait_for(lambda i=i: len(recording_handler.of("quiet")) == i + 1, timeout=2)
            latencies.append(time.monotonic() - t0)
            await asyncio.sleep(0.1)  # keep flooding for a while
        ahead = sent - len(recording_handler.of("flood"))
        stop.set()
        await asyncio.wait_for(task, 30)
        assert max(latencies) < 1.0, latencies
        # Without back-pressure the flooder would be thousands of frames ahead;
        # with it, only what the socket buffers hold (a few MiB) plus max_queue.
        assert ahead < 400, ahead
        await wait_for(lambda: len(recording_handler.of("flood")) == sent, timeout=30)


async def test_refused_session_is_closed_with_the_handlers_reason(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    recording_handler.accept = False
    server = await ws_server()
    async with await dial(server, pki, "edge-f") as ws:
        with pytest.raises(ConnectionClosed) as err:
            await asyncio.wait_for(ws.recv(), 5)
    assert err.value.rcvd is not None
    assert (err.value.rcvd.code, err.value.rcvd.reason) == (4001, "node limit reached")
    assert recording_handler.disconnects == []


async def test_reconnect_gives_a_new_connection(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server()
    ctx = pki.client_context("edge-g")
    for _ in range(2):
        async with await dial(server, pki, "edge-g", ctx=ctx) as ws:
            await ws.send(codec.encode(keepalive()))
            n = len(recording_handler.connections)
            await wait_for(lambda n=n: len(recording_handler.of("edge-g")) == n)
    await wait_for(lambda: len(recording_handler.disconnects) == 2)
    assert len(recording_handler.connections) == 2
    assert recording_handler.connections[0] is not recording_handler.connections[1]


async def test_session_close_reaches_the_edge(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server()
    async with await dial(server, pki, "edge-h") as ws:
        await wait_for(lambda: recording_handler.connections)
        await recording_handler.connections[0].close(4002, "keepalive timeout " + "x" * 200)
        with pytest.raises(ConnectionClosed) as err:
            await asyncio.wait_for(ws.recv(), 5)
    assert err.value.rcvd is not None and err.value.rcvd.code == 4002
    assert err.value.rcvd.reason.startswith("keepalive timeout")
    await wait_for(lambda: recording_handler.disconnects)


async def test_raw_gorilla_style_upgrade_and_masked_frame(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    """A hand-written upgrade with edgecore's exact header spelling, then one raw frame."""
    server = await ws_server()
    ctx = pki.client_context("edge-raw")
    reader, writer = await asyncio.open_connection("localhost", server.port, ssl=ctx)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /e632aba927ea4ac2b575ec1603d56f10/edge-raw/events HTTP/1.1\r\n"
            f"Host: localhost:{server.port}\r\n"
            "User-Agent: Go-http-client/1.1\r\n"
            "Connection: Upgrade\r\nUpgrade: websocket\r\n"
            "Connectionuse: msg\r\nNode_id: edge-raw\r\n"
            "Project_id: e632aba927ea4ac2b575ec1603d56f10\r\n"
            f"Sec-Websocket-Key: {key}\r\nSec-Websocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert status.startswith(b"HTTP/1.1 101")
    payload = codec.encode(keepalive())
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert 126 <= len(payload) < 65536
    writer.write(bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask + masked)
    await writer.drain()
    await wait_for(lambda: recording_handler.of("edge-raw"))
    assert recording_handler.of("edge-raw")[0].operation == "keepalive"
    writer.close()
    await wait_for(lambda: recording_handler.disconnects)


async def test_write_to_a_node_that_stopped_reading_times_out(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server(write_timeout=0.5)
    # The client takes one message and then reads nothing more (max_queue=1).
    async with await dial(server, pki, "stuck", max_size=None, max_queue=1, close_timeout=0.5):
        await wait_for(lambda: recording_handler.connections)
        conn = recording_handler.connections[0]
        big = Message.new(
            source="edgecontroller",
            group="resource",
            operation="update",
            resource="default/configmap/c",
            content="x" * (1 << 20),
        )
        with pytest.raises(ConnectionError, match="timed out"):
            async with asyncio.timeout(30):
                while True:
                    await conn.write(big)
        await wait_for(lambda: recording_handler.disconnects, what="on_disconnect")


async def test_tls12_is_limited_to_kubeedges_suites(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler
) -> None:
    server = await ws_server()
    ok = pki.client_context("edge-tls")
    ok.maximum_version = ssl.TLSVersion.TLSv1_2
    ok.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    async with await dial(server, pki, "edge-tls", ctx=ok) as ws:
        ssl_object = ws.transport.get_extra_info("ssl_object")
        assert ssl_object.version() == "TLSv1.2"
        assert ssl_object.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    # A TLS 1.2 suite outside KubeEdge's list is refused.
    cbc = pki.client_context("edge-tls")
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA256")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await dial(server, pki, "edge-tls", ctx=cbc)
    assert [c.node_id for c in recording_handler.connections] == ["edge-tls"]
