"""The QUIC link (docs/protocol-quic.md) against a small aioquic server.

The server speaks the documented session: control stream with the ``header``
message answered ``ack``, then a ``msg`` stream carrying packed messages both
ways. It checks what the edge sends and lets the test push frames down.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived

from beehive.message import Message
from fixtures.minicloud import EdgeRunner, MiniCloud, Probe, edge_settings, wait_until
from kecommon import quicframing as qf


@dataclass
class QuicCloud:
    headers: list[dict[str, str]] = field(default_factory=list)
    received: list[Message] = field(default_factory=list)
    sessions: list[_ServerProtocol] = field(default_factory=list)
    server: QuicServer | None = None
    port: int = 0

    def push(self, data: bytes) -> None:
        proto = self.sessions[-1]
        assert proto.msg_stream is not None
        proto._quic.send_stream_data(proto.msg_stream, data)
        proto.transmit()


class _ServerProtocol(QuicConnectionProtocol):
    cloud: QuicCloud

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.control: int | None = None
        self.msg_stream: int | None = None
        self._pending: dict[int, bytes] = {}
        self._parsers: dict[int, qf.MessageParser] = {}
        self.cloud.sessions.append(self)

    def quic_event_received(self, event: Any) -> None:
        if not isinstance(event, StreamDataReceived):
            return
        sid, data = event.stream_id, event.data
        if self.control is None:
            self.control = sid
        if sid not in self._parsers:
            if sid != self.control:
                buf = self._pending.get(sid, b"") + data
                if len(buf) < qf.USE_TYPE_SIZE:
                    self._pending[sid] = buf
                    return
                assert buf[: qf.USE_TYPE_SIZE] == qf.USE_TYPE_MSG
                self.msg_stream = sid
                data = buf[qf.USE_TYPE_SIZE :]
            self._parsers[sid] = qf.MessageParser()
        for msg in self._parsers[sid].feed(data):
            if sid == self.control:
                assert msg.operation == qf.OP_HEADER
                self.cloud.headers.append(qf.decode_header_content(msg.content))
                self._quic.send_stream_data(sid, qf.encode_message(msg.response("ack")))
                self.transmit()
            else:
                self.cloud.received.append(msg)


@pytest.fixture
async def quiccloud(minicloud: MiniCloud) -> AsyncIterator[QuicCloud]:
    ca, crt, key = minicloud.pki.files(minicloud.workdir / "quic-pki")
    config = QuicConfiguration(
        is_client=False, alpn_protocols=[qf.ALPN], verify_mode=ssl.CERT_REQUIRED
    )
    config.load_cert_chain(str(crt), str(key))
    config.load_verify_locations(cafile=str(ca))
    cloud = QuicCloud()

    class Proto(_ServerProtocol):
        pass

    Proto.cloud = cloud
    cloud.server = await serve("127.0.0.1", 0, configuration=config, create_protocol=Proto)
    cloud.port = cloud.server._transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
    try:
        yield cloud
    finally:
        cloud.server.close()


async def test_quic_session_keepalive_and_downstream(
    minicloud: MiniCloud, quiccloud: QuicCloud, tmp_path: Path
) -> None:
    meta = Probe("metamanager", "meta")
    settings = edge_settings(
        minicloud,
        tmp_path,
        node="quic-edge",
        use_quic=True,
        quic_server=f"127.0.0.1:{quiccloud.port}",
        heartbeat=0.3,
    )
    async with EdgeRunner(settings, probes=[meta]) as edge:
        await wait_until(lambda: len(quiccloud.received) >= 2, timeout=10)
        assert quiccloud.headers[0] == {
            "node_id": "quic-edge",
            "project_id": settings.project_id,
            "connectionuse": "msg",
        }
        first = quiccloud.received[0]
        assert (first.source, first.group, first.operation, first.resource, first.content) == (
            "websocket",
            "resource",
            "keepalive",
            "node",
            "ping",
        )
        push = Message.new(
            source="edgecontroller",
            group="resource",
            operation="insert",
            resource="default/pod/p",
            content={"kind": "Pod"},
            resource_version="5",
        )
        quiccloud.push(qf.encode_message(push))
        got = await wait_until(lambda: meta.messages)
        assert got[0].content == {"kind": "Pod"} and got[0].resource_version == "5"
        assert edge.hub.stats["sessions"] == 1
        # a frame with a wrong packer version drops the session; the hub reconnects
        quiccloud.push(b"\x09\x09\x09\x09\x01\x00\x00\x00\x00\x02{}")
        await wait_until(lambda: len(quiccloud.sessions) == 2, timeout=10)
        await wait_until(lambda: edge.hub.stats["sessions"] == 2, timeout=10)
        assert edge.hub.stats["malformed"] == 1
