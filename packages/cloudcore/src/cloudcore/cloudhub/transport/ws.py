"""The cloudhub WebSocket server (protocol.md 3.2-3.5, 10).

Mirrors viaduct's WS server (``pkg/viaduct/pkg/server/ws.go``, ``conn/ws.go``,
``lane/wsnopack.go``) as cloudhub uses it: wss on port 10000, any path,
mutual TLS against the KubeEdge CA, headers ``node_id``/``project_id``/
``ConnectionUse: msg``, one JSON beehive message per text frame (gorilla's
``WriteJSON`` adds a trailing newline; we do too).

Where we differ from KubeEdge, on purpose:

* A connection without ``ConnectionUse: msg`` or ``node_id`` is refused during
  the upgrade with 400 and a reason (KubeEdge accepts it and never reads it).
* Node authentication (client certificate CN = ``system:node:<node_id>``) is
  on by default and refused with 403 (KubeEdge: off by default, and a refused
  connection is left open and unread).
* Frames are capped (``max_frame_size``, 32 MiB: close 1009); a frame that is
  not a message closes that connection with 1007 and the decode error.
* Back-pressure: each connection reads one frame at a time into the session
  layer and at most ``max_queue`` frames ahead; beyond that websockets stops
  reading the socket, so a flooding node is held back by TCP while the event
  loop keeps serving the others (the reader yields after every frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import weakref
from http import HTTPStatus
from typing import TYPE_CHECKING

from cryptography import x509
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from beehive import codec
from beehive.exceptions import CodecError
from beehive.message import Message
from cloudcore import metrics
from cloudcore.cloudhub.tls import (
    authenticate_node,
    limit_tls_read_buffer,
    share_tls_read_buffer,
)
from cloudcore.cloudhub.transport.common import (
    ConnectionInfo,
    HubServerSettings,
    check_connection_headers,
)

if TYPE_CHECKING:
    from cloudcore.cloudhub.handler import ConnectionHandler

__all__ = ["CLOSE_INTERNAL", "CLOSE_INVALID_DATA", "WebSocketNodeConnection", "WebSocketServer"]

log = logging.getLogger(__name__)

TRANSPORT = "websocket"
#: RFC 6455 close codes we send.
CLOSE_NORMAL = 1000
CLOSE_INVALID_DATA = 1007
CLOSE_INTERNAL = 1011
#: A close reason must fit in a control frame (125 bytes minus the code).
_MAX_REASON = 123


def _reason(text: str) -> str:
    data = text.encode("utf-8")[:_MAX_REASON]
    return data.decode("utf-8", "ignore")


class _HubServerConnection(ServerConnection):
    """websockets' server connection, reading TLS into a shared buffer.

    ``connection_made`` runs once the TLS handshake is done: from then on the
    connection reads into its thread's shared buffer (tls.py) instead of its
    own 16 KiB one.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        share_tls_read_buffer(transport)


class WebSocketNodeConnection:
    """One authenticated edge connection (the ``NodeConnection`` of handler.py).

    ``write`` is the single write path: a lock keeps frames whole and in order,
    and a write that takes longer than ``write_timeout`` closes the connection
    (a peer that stopped reading must not hold a session forever).
    """

    transport = TRANSPORT

    def __init__(
        self, ws: ServerConnection, info: ConnectionInfo, *, write_timeout: float | None
    ) -> None:
        self.node_id = info.node_id
        self.project_id = info.project_id
        self._ws = ws
        self._write_timeout = write_timeout
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<WebSocketNodeConnection node={self.node_id} peer={self._ws.remote_address}>"

    async def write(self, msg: Message) -> None:
        """Send ``msg`` as one text frame.

        Raises:
            ConnectionError: the connection is closed or the write timed out.
        """
        # The encoded JSON is UTF-8 already: send the bytes as a text frame
        # instead of decoding them to str for websockets to encode again.
        data = codec.encode(msg)
        async with self._lock:
            try:
                async with asyncio.timeout(self._write_timeout):
                    await self._ws.send(data, text=True)
            except ConnectionClosed as exc:
                raise ConnectionError(f"connection of node {self.node_id} is closed") from exc
            except TimeoutError as exc:
                log.warning(
                    "node %s: write of msg %s timed out after %ss, closing",
                    self.node_id,
                    msg.msg_id,
                    self._write_timeout,
                )
                # close() could wait on the same stuck socket: abort instead.
                self._ws.transport.abort()
                raise ConnectionError(f"write to node {self.node_id} timed out") from exc

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason`` (truncated to fit a close frame)."""
        with contextlib.suppress(ConnectionClosed, OSError):
            await self._ws.close(code, _reason(reason))


class WebSocketServer:
    """The wss server: authenticate, then pump frames to the ConnectionHandler."""

    def __init__(
        self,
        settings: HubServerSettings,
        *,
        ssl_context: ssl.SSLContext,
        ca_cert: x509.Certificate,
        handler: ConnectionHandler,
    ) -> None:
        self.settings = settings
        self._ssl = ssl_context
        self._ca = ca_cert
        self._handler = handler
        self._server: Server | None = None
        # Identity checked at upgrade time, handed to _serve; weak so a failed
        # handshake leaves nothing behind.
        self._infos: weakref.WeakKeyDictionary[ServerConnection, ConnectionInfo] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        assert self._server is not None, "server not started"
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def start(self) -> None:
        limit_tls_read_buffer()  # 256 KiB per idle connection otherwise
        if not self.settings.node_auth:
            log.warning(
                "node authentication is OFF: any certificate from the CA may claim any node_id"
            )
        self._server = await serve(
            self._serve,
            self.settings.address,
            self.settings.port,
            ssl=self._ssl,
            process_request=self._process_request,
            create_connection=_HubServerConnection,
            max_size=self.settings.max_frame_size,
            max_queue=self.settings.max_queue,
            compression=None,  # gorilla/edgecore does not negotiate permessage-deflate
            ping_interval=None,  # liveness is the message keepalive (protocol.md 3.7)
            # A replaced or timed-out session waits this long for the edge's
            # close frame; KubeEdge just drops the socket.
            close_timeout=self.settings.close_timeout,
            server_header=None,
            logger=logging.getLogger(__name__ + ".protocol"),
        )
        log.info("websocket server listening on %s:%d", self.settings.address, self.port)

    async def stop(self) -> None:
        """Stop accepting and close every connection (1001), waiting briefly."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close(close_connections=True)
        await server.wait_closed()

    # -- upgrade ------------------------------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        checked = check_connection_headers(headers)
        if isinstance(checked, str):
            return self._refuse(conn, HTTPStatus.BAD_REQUEST, checked, "headers")
        ssl_object = conn.transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        refusal = authenticate_node(
            [peer] if peer else [], self._ca, checked.node_id, check_cn=self.settings.node_auth
        )
        if refusal is not None:
            log.warning(
                "node %s from %s: refused: %s", checked.node_id, conn.remote_address, refusal
            )
            return self._refuse(conn, HTTPStatus.FORBIDDEN, refusal, "authentication")
        self._infos[conn] = checked
        return None

    def _refuse(
        self, conn: ServerConnection, status: HTTPStatus, reason: str, kind: str
    ) -> Response:
        metrics.CONNECTIONS_REFUSED.labels(TRANSPORT, kind).inc()
        log.warning(
            "websocket upgrade from %s refused (%d): %s", conn.remote_address, status, reason
        )
        return conn.respond(status, reason + "\n")

    # -- session ------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        info = self._infos.pop(ws, None)
        if info is None:  # cannot happen: process_request either refused or stored it
            await ws.close(CLOSE_INTERNAL, "connection not authenticated")
            return
        # The 101 response is never read again: drop its headers (about 1.3 KiB per
        # connected node). The request's stay alive whatever we do here: websockets'
        # frame parser (a generator) still holds it in a local variable.
        ws.response = None
        conn = WebSocketNodeConnection(ws, info, write_timeout=self.settings.write_timeout)
        log.info("node %s connected over websocket from %s", info.node_id, ws.remote_address)
        try:
            accepted = await self._handler.on_connect(conn)
        except Exception:
            log.exception("node %s: on_connect failed", info.node_id)
            await conn.close(CLOSE_INTERNAL, "cloudhub could not start the session")
            return
        if not accepted:
            metrics.CONNECTIONS_REFUSED.labels(TRANSPORT, "session").inc()
            log.info("node %s: session refused by cloudhub", info.node_id)
            # The handler closed it with its reason; make sure it is gone.
            await conn.close(CLOSE_NORMAL, "session refused")
            return
        metrics.OPEN_CONNECTIONS.labels(TRANSPORT).inc()
        reason = "connection closed"
        try:
            reason = await self._read_loop(ws, conn)
        finally:
            metrics.OPEN_CONNECTIONS.labels(TRANSPORT).dec()
            log.info("node %s disconnected: %s", info.node_id, reason)
            try:
                await self._handler.on_disconnect(conn, reason)
            except Exception:
                log.exception("node %s: on_disconnect failed", info.node_id)

    async def _read_loop(self, ws: ServerConnection, conn: WebSocketNodeConnection) -> str:
        node = conn.node_id
        while True:
            try:
                data = await ws.recv()
            except ConnectionClosed as exc:
                if (exc.rcvd is not None and exc.rcvd.code == 1009) or (
                    exc.sent is not None and exc.sent.code == 1009
                ):
                    metrics.FRAMES_REJECTED.labels(TRANSPORT, "too_big").inc()
                elif exc.sent is not None and exc.sent.code == CLOSE_INVALID_DATA:
                    metrics.FRAMES_REJECTED.labels(TRANSPORT, "malformed").inc()
                return _describe_close(exc)
            try:
                msg = codec.decode(data, max_size=None)  # websockets enforced max_size
            except CodecError as exc:
                metrics.FRAMES_REJECTED.labels(TRANSPORT, "malformed").inc()
                log.warning("node %s: malformed frame, closing: %s", node, exc)
                await conn.close(CLOSE_INVALID_DATA, f"malformed message: {exc}")
                return f"malformed message: {exc}"
            metrics.FRAMES_RECEIVED.labels(TRANSPORT).inc()
            try:
                await self._handler.on_message(conn, msg)
            except Exception:
                log.exception("node %s: handling msg %s failed, closing", node, msg.msg_id)
                await conn.close(CLOSE_INTERNAL, "cloudhub failed to handle a message")
                return "internal error"
            # recv() returns without suspending while frames are buffered: yield
            # so that one busy node cannot monopolise the event loop.
            await asyncio.sleep(0)


def _describe_close(exc: ConnectionClosed) -> str:
    frame = exc.sent if exc.sent is not None and exc.sent.code != 1000 else exc.rcvd
    if frame is None:
        return "connection lost"
    who = "cloud" if frame is exc.sent else "edge"
    return f"closed by {who} ({frame.code}{': ' + frame.reason if frame.reason else ''})"
