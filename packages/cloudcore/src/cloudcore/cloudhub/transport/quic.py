"""The cloudhub QUIC server (docs/protocol-quic.md), off by default like KubeEdge's.

IETF QUIC v1 through aioquic, ALPN ``kubeedge-msg/1``; the session is viaduct's
(protocol.md 3.6) with JSON payloads: a control stream that carries the
``header`` message and its ``ack``, then one ``msg`` stream for every message in
both directions. The session semantics (keepalive, replacement, node limit)
are the session layer's, exactly as on WebSocket.

Mutual TLS. aioquic (1.x) has no public switch to make a server ask for a
client certificate, and it never verifies one. So, and this is the whole
trick:

1. Each connection's TLS context gets ``_request_client_certificate = True``
   right after aioquic creates it (we wrap ``QuicConnection._initialize``),
   so the server sends a CertificateRequest; aioquic then checks the client's
   CertificateVerify, i.e. that the client holds the certificate's key.
2. After ``HandshakeCompleted`` we verify the certificate ourselves: exactly
   one certificate, signed by the KubeEdge CA, within its validity, clientAuth
   allowed; then, with the ``header`` message, its CN against ``node_id``.
   A connection without a (valid) certificate is closed with code 3 and the
   reason before any message is read.

Both rely on aioquic internals, so :func:`check_aioquic_support` runs at
start-up and the server refuses to start (fail closed) if they are missing.

Back-pressure: aioquic cannot pause a single stream, so decoded messages wait
in a bounded per-connection inbox (``max_queue`` messages / 2 x frame cap
bytes); a node that overruns it is closed with code 8. Writes wait while
more than 1 MiB is unacknowledged on the msg stream (aioquic itself never
blocks a writer); a peer that acknowledges nothing for ``write_timeout`` is
closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.tls import Context as TlsContext
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from beehive import codec
from beehive.exceptions import CodecError
from beehive.message import Message
from cloudcore import metrics
from cloudcore.cloudhub.tls import authenticate_node
from cloudcore.cloudhub.transport.common import (
    ConnectionInfo,
    HubServerSettings,
    check_connection_headers,
)
from kecommon import certs
from kecommon import quicframing as qf

if TYPE_CHECKING:
    from cloudcore.cloudhub.handler import ConnectionHandler

__all__ = [
    "QuicHubServer",
    "QuicNodeConnection",
    "QuicSupportError",
    "check_aioquic_support",
    "quic_close_code",
]

log = logging.getLogger(__name__)

TRANSPORT = "quic"

# Application close codes (docs/protocol-quic.md); 0-6 from quicframing.
CODE_NODE_DELETED = 7
CODE_OVERFLOW = 8
CODE_INTERNAL = 9

#: Control-stream messages answered besides the header; one more is a
#: flood and closes the connection with CODE_OVERFLOW. viaduct's edge sends none,
#: so a peer that keeps talking there only makes the server write acks for it.
MAX_CONTROL_MESSAGES = 16

#: Unacknowledged bytes on the msg stream above which writers wait, and the
#: level at which they resume.
WRITE_HIGH_WATER = 1 << 20
WRITE_LOW_WATER = 1 << 18

# Session-layer (WebSocket-style) close codes -> QUIC application codes.
_CLOSE_MAP = {
    1000: qf.CODE_NORMAL,
    1001: qf.CODE_NORMAL,
    1007: qf.CODE_MALFORMED,
    1009: qf.CODE_TOO_BIG,
    4000: qf.CODE_REPLACED,
    4001: qf.CODE_NODE_LIMIT,
    4002: qf.CODE_KEEPALIVE,
    4003: CODE_NODE_DELETED,
}


def quic_close_code(code: int) -> int:
    """The QUIC application error code for a session-layer close code."""
    return _CLOSE_MAP.get(code, CODE_INTERNAL)


class QuicSupportError(RuntimeError):
    """The installed aioquic lacks the hooks mutual TLS depends on."""


def check_aioquic_support() -> None:
    """Fail closed if aioquic's internals we rely on are gone.

    Raises:
        QuicSupportError: with what is missing.
    """
    if not callable(getattr(QuicConnection, "_initialize", None)):
        raise QuicSupportError("aioquic QuicConnection._initialize is missing")
    probe = TlsContext(is_client=False)
    for attr in ("_request_client_certificate", "_peer_certificate", "_peer_certificate_chain"):
        if not hasattr(probe, attr):
            raise QuicSupportError(f"aioquic tls.Context.{attr} is missing")


def _require_client_certificate(quic: QuicConnection) -> None:
    original = quic._initialize

    def initialize(peer_cid: bytes) -> None:
        original(peer_cid)
        quic.tls._request_client_certificate = True

    quic._initialize = initialize  # type: ignore[method-assign]


def _peer_chain_der(quic: QuicConnection) -> list[bytes]:
    tls = getattr(quic, "tls", None)
    leaf = getattr(tls, "_peer_certificate", None)
    if leaf is None:
        return []
    chain = [leaf, *getattr(tls, "_peer_certificate_chain", [])]
    return [c.public_bytes(serialization.Encoding.DER) for c in chain]


class QuicNodeConnection:
    """One authenticated QUIC session (the ``NodeConnection`` of handler.py)."""

    transport = TRANSPORT

    def __init__(self, protocol: _HubProtocol, info: ConnectionInfo) -> None:
        self.node_id = info.node_id
        self.project_id = info.project_id
        self._protocol = protocol

    def __repr__(self) -> str:
        return f"<QuicNodeConnection node={self.node_id}>"

    async def write(self, msg: Message) -> None:
        """Send ``msg`` as one frame on the msg stream.

        Raises:
            ConnectionError: the connection is closed.
        """
        self._protocol.send_message(msg)
        await self._protocol.drain()

    async def close(self, code: int, reason: str) -> None:
        self._protocol.close_with(quic_close_code(code), reason)


@dataclass
class _Inbox:
    """Decoded upstream messages waiting for the session layer (bounded)."""

    max_messages: int
    max_bytes: int
    items: deque[tuple[Message, int]]
    size: int = 0

    def push(self, msg: Message, nbytes: int) -> bool:
        if len(self.items) >= self.max_messages or self.size + nbytes > self.max_bytes:
            return False
        self.items.append((msg, nbytes))
        self.size += nbytes
        return True

    def pop(self) -> Message:
        msg, nbytes = self.items.popleft()
        self.size -= nbytes
        return msg


class _HubProtocol(QuicConnectionProtocol):
    """One QUIC connection: handshake checks, control stream, msg stream."""

    def __init__(self, quic: QuicConnection, stream_handler: Any = None, *, hub: QuicHubServer):
        super().__init__(quic, stream_handler)
        _require_client_certificate(quic)
        self._hub = hub
        settings = hub.settings
        self._max_size = settings.max_frame_size
        self._handshake_done = False
        self._peer: list[bytes] = []
        self._control_id: int | None = None
        self._control = qf.MessageParser(max_size=self._max_size)
        self._control_extra = 0  # control messages other than the header, answered "ack"
        self._info: ConnectionInfo | None = None
        self._msg_id: int | None = None
        self._msg_frames = qf.FrameParser(max_size=self._max_size)
        self._preamble = b""
        self._inbox = _Inbox(
            max_messages=max(1, settings.max_queue) * 64,
            max_bytes=2 * self._max_size,
            items=deque(),
        )
        self._wakeup = asyncio.Event()
        self._conn: QuicNodeConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._close_reason = "connection closed"
        self._terminated = asyncio.Event()
        self._drained = asyncio.Event()

    # -- writing ---------------------------------------------------------------------

    def _unacked(self) -> int:
        # Bytes written to the msg stream and not yet acknowledged by the peer
        # (aioquic trims the sender's buffer as acks arrive).
        stream = self._quic._streams.get(self._msg_id) if self._msg_id is not None else None
        return len(getattr(getattr(stream, "sender", None), "_buffer", b""))

    async def drain(self) -> None:
        """Wait while more than the high-water mark is unacknowledged.

        aioquic buffers writes without limit; this gives writers TCP-like
        back-pressure. A peer that acknowledges nothing for ``write_timeout``
        seconds is closed.

        Raises:
            ConnectionError: the connection closed or the write timed out.
        """
        if self._unacked() <= WRITE_HIGH_WATER:
            return
        try:
            async with asyncio.timeout(self._hub.settings.write_timeout):
                while self._unacked() > WRITE_LOW_WATER:
                    if self._closing or self._terminated.is_set():
                        raise ConnectionError(f"QUIC connection of {self._who()} is closed")
                    self._drained.clear()
                    await self._drained.wait()
        except TimeoutError as exc:
            log.warning("node %s: write timed out, closing", self._who())
            self.close_with(CODE_INTERNAL, "write timeout")
            raise ConnectionError(f"write to node {self._who()} timed out") from exc

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        super().datagram_received(data, addr)
        if self._unacked() <= WRITE_LOW_WATER:
            self._drained.set()

    def send_message(self, msg: Message) -> None:
        if self._closing or self._terminated.is_set() or self._msg_id is None:
            raise ConnectionError(f"QUIC connection of {self._who()} is closed")
        self._quic.send_stream_data(self._msg_id, qf.encode_message(msg, max_size=self._max_size))
        self.transmit()

    def close_with(self, code: int, reason: str) -> None:
        """Close the connection with an application error code and reason; idempotent."""
        if self._closing:
            return
        self._closing = True
        self._close_reason = f"closed by cloud ({code}: {reason})"
        self._quic.close(error_code=code, reason_phrase=reason[:256])
        self.transmit()
        self._wakeup.set()
        self._drained.set()

    def _who(self) -> str:
        return self._info.node_id if self._info else "unauthenticated peer"

    def _refuse(self, code: int, reason: str, kind: str) -> None:
        metrics.CONNECTIONS_REFUSED.labels(TRANSPORT, kind).inc()
        log.warning("quic connection from %s refused: %s", self._who(), reason)
        self.close_with(code, reason)

    def _reject_frame(self, exc: qf.FramingError) -> None:
        kind = "too_big" if isinstance(exc, qf.FrameTooBig) else "malformed"
        metrics.FRAMES_REJECTED.labels(TRANSPORT, kind).inc()
        log.warning("node %s: bad frame, closing: %s", self._who(), exc)
        self.close_with(exc.code, str(exc))

    # -- events ----------------------------------------------------------------------

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.ConnectionTerminated):
            if not self._closing:
                self._close_reason = (
                    f"closed by edge ({event.error_code}: {event.reason_phrase})"
                    if event.reason_phrase or event.error_code
                    else "connection closed by edge"
                )
            self._terminated.set()
            self._wakeup.set()
            self._drained.set()
            if self._task is None:
                self._hub._forget(self)
            return
        if self._closing:
            return
        if isinstance(event, events.HandshakeCompleted):
            self._on_handshake(event)
        elif isinstance(event, events.StreamDataReceived):
            try:
                self._on_stream_data(event)
            except qf.FramingError as exc:
                self._reject_frame(exc)

    def _on_handshake(self, event: events.HandshakeCompleted) -> None:
        if event.alpn_protocol != qf.ALPN:
            self._refuse(qf.CODE_REFUSED, f"ALPN must be {qf.ALPN}", "alpn")
            return
        self._peer = _peer_chain_der(self._quic)
        # The CN is checked against node_id with the header message; here only
        # that there is exactly one certificate and the CA signed it.
        refusal = authenticate_node(self._peer, self._hub.ca_cert, "", check_cn=False)
        if refusal is not None:
            self._refuse(qf.CODE_REFUSED, refusal, "authentication")
            return
        self._handshake_done = True

    def _on_stream_data(self, event: events.StreamDataReceived) -> None:
        sid = event.stream_id
        if not self._handshake_done:
            raise qf.MalformedFrame("stream data before the handshake completed")
        if sid % 4 != 0:  # client-initiated bidirectional streams only
            raise qf.MalformedFrame(f"unexpected stream {sid}")
        if self._control_id is None:
            self._control_id = sid
        if sid == self._control_id:
            for msg in self._control.feed(event.data):
                self._on_control(msg)
                if self._closing:
                    return
            if event.end_stream:
                self.close_with(qf.CODE_NORMAL, "control stream ended")
            return
        if self._info is None:
            raise qf.MalformedFrame("a message stream was opened before the header was accepted")
        if self._msg_id is None:
            need = qf.USE_TYPE_SIZE - len(self._preamble)
            self._preamble += event.data[:need]
            data = event.data[need:]
            if len(self._preamble) < qf.USE_TYPE_SIZE:
                return
            if self._preamble != qf.USE_TYPE_MSG:
                raise qf.MalformedFrame(f"unsupported stream use type {self._preamble!r}")
            self._msg_id = sid
            self._start_session()
        elif sid != self._msg_id:
            raise qf.MalformedFrame("only one msg stream per session is allowed")
        else:
            data = event.data
        for payload in self._msg_frames.feed(data):
            try:
                msg = codec.decode(payload, max_size=None)
            except CodecError as exc:
                raise qf.MalformedFrame(f"the frame is not a message: {exc}") from exc
            if not self._inbox.push(msg, len(payload)):
                metrics.FRAMES_REJECTED.labels(TRANSPORT, "overflow").inc()
                self._refuse(CODE_OVERFLOW, "receive buffer overflow: too many messages", "flood")
                return
            metrics.FRAMES_RECEIVED.labels(TRANSPORT).inc()
        self._wakeup.set()
        if event.end_stream:
            self.close_with(qf.CODE_NORMAL, "msg stream ended")

    def _on_control(self, msg: Message) -> None:
        if msg.operation != qf.OP_HEADER or self._info is not None:
            # viaduct answers every other control message with "ack"; capped, since
            # each one costs the server a write and nothing else limits them
            self._control_extra += 1
            if self._control_extra > MAX_CONTROL_MESSAGES:
                metrics.FRAMES_REJECTED.labels(TRANSPORT, "overflow").inc()
                self._refuse(
                    CODE_OVERFLOW,
                    f"control stream flood: more than {MAX_CONTROL_MESSAGES} messages",
                    "flood",
                )
                return
            self._reply_control(msg, "ack")
            return
        try:
            headers = qf.decode_header_content(msg.content)
        except qf.MalformedFrame as exc:
            self._reply_control(msg, "nack")
            self._refuse(qf.CODE_REFUSED, str(exc), "headers")
            return
        checked = check_connection_headers(headers)
        if isinstance(checked, str):
            self._reply_control(msg, "nack")
            self._refuse(qf.CODE_REFUSED, checked, "headers")
            return
        refusal = authenticate_node(
            self._peer, self._hub.ca_cert, checked.node_id, check_cn=self._hub.settings.node_auth
        )
        if refusal is not None:
            self._info = checked  # for the log line
            self._reply_control(msg, "nack")
            self._refuse(qf.CODE_REFUSED, refusal, "authentication")
            return
        self._info = checked
        self._reply_control(msg, "ack")
        log.info("node %s: quic header accepted", checked.node_id)

    def _reply_control(self, msg: Message, content: str) -> None:
        assert self._control_id is not None
        self._quic.send_stream_data(
            self._control_id, qf.encode_message(msg.response(content), max_size=self._max_size)
        )
        self.transmit()

    # -- session ---------------------------------------------------------------------

    def _start_session(self) -> None:
        assert self._info is not None
        self._conn = QuicNodeConnection(self, self._info)
        self._task = asyncio.create_task(self._run(self._conn), name=f"quic:{self._info.node_id}")

    async def _run(self, conn: QuicNodeConnection) -> None:
        handler = self._hub.handler
        try:
            try:
                accepted = await handler.on_connect(conn)
            except Exception:
                log.exception("node %s: on_connect failed", conn.node_id)
                self.close_with(CODE_INTERNAL, "cloudhub could not start the session")
                return
            if not accepted:
                metrics.CONNECTIONS_REFUSED.labels(TRANSPORT, "session").inc()
                self.close_with(qf.CODE_NORMAL, "session refused")
                return
            log.info("node %s connected over quic", conn.node_id)
            metrics.OPEN_CONNECTIONS.labels(TRANSPORT).inc()
            try:
                await self._pump(conn)
            finally:
                metrics.OPEN_CONNECTIONS.labels(TRANSPORT).dec()
                log.info("node %s disconnected: %s", conn.node_id, self._close_reason)
                try:
                    await handler.on_disconnect(conn, self._close_reason)
                except Exception:
                    log.exception("node %s: on_disconnect failed", conn.node_id)
        finally:
            self._hub._forget(self)

    async def _pump(self, conn: QuicNodeConnection) -> None:
        while True:
            while self._inbox.items and not self._closing:
                msg = self._inbox.pop()
                try:
                    await self._hub.handler.on_message(conn, msg)
                except Exception:
                    log.exception("node %s: handling msg %s failed", conn.node_id, msg.msg_id)
                    self.close_with(CODE_INTERNAL, "cloudhub failed to handle a message")
                    return
                await asyncio.sleep(0)  # fairness between nodes
            if self._closing or self._terminated.is_set():
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    async def wait_terminated(self) -> None:
        await self._terminated.wait()


class QuicHubServer:
    """The QUIC server; ``port`` is the bound UDP port after :meth:`start`."""

    def __init__(
        self,
        settings: HubServerSettings,
        *,
        server_cert: certs.CertPair,
        ca_cert: x509.Certificate,
        handler: ConnectionHandler,
    ) -> None:
        self.settings = settings
        self.ca_cert = ca_cert
        self.handler = handler
        self._server_cert = server_cert
        self._server: QuicServer | None = None
        self._protocols: set[_HubProtocol] = set()
        self.port = settings.port

    async def start(self) -> None:
        check_aioquic_support()
        if not self.settings.node_auth:
            log.warning(
                "node authentication is OFF: any certificate from the CA may claim any node_id"
            )
        config = QuicConfiguration(
            is_client=False,
            alpn_protocols=[qf.ALPN],
            idle_timeout=self.settings.idle_timeout,
            max_datagram_frame_size=None,
        )
        config.certificate = self._server_cert.cert
        config.private_key = self._server_cert.key
        # Informational for aioquic (it verifies nothing server-side); we verify.
        config.cadata = certs.cert_to_pem(self.ca_cert)

        def create_protocol(quic: QuicConnection, stream_handler: Any = None) -> _HubProtocol:
            protocol = _HubProtocol(quic, stream_handler, hub=self)
            self._protocols.add(protocol)
            return protocol

        self._server = await serve(
            self.settings.address,
            self.settings.port,
            configuration=config,
            create_protocol=create_protocol,
        )
        transport = self._server._transport
        assert transport is not None
        self.port = int(transport.get_extra_info("sockname")[1])
        log.info("quic server listening on %s:%d (udp)", self.settings.address, self.port)

    def _forget(self, protocol: _HubProtocol) -> None:
        self._protocols.discard(protocol)

    async def stop(self) -> None:
        """Close every connection (code 0) and stop listening."""
        if self._server is None:
            return
        server, self._server = self._server, None
        protocols = list(self._protocols)
        for p in protocols:
            p.close_with(qf.CODE_NORMAL, "cloudcore is shutting down")
        tasks = [p._task for p in protocols if p._task is not None]
        if tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.gather(*tasks, return_exceptions=True)
        server.close()
