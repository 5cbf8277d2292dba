"""The WebSocket link to cloudhub (protocol.md 3.2-3.5).

URL ``wss://<server>/<projectID>/<node>/events``; headers ``node_id``,
``project_id`` and ``ConnectionUse: msg`` (sent in the case Go's net/http
puts on the wire, as the capture shows); mutual TLS with the server verified
against the KubeEdge CA with hostname checking. One JSON message per text
frame. No permessage-deflate and no WebSocket pings, as gorilla's client.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from beehive import codec
from beehive.exceptions import CodecError
from beehive.message import Message
from edgecore.edgehub.errors import LinkError, MalformedFrame
from edgecore.edgehub.settings import EdgeHubSettings

__all__ = ["WebSocketLink", "client_ssl_context", "connect_websocket", "ws_url"]


def ws_url(settings: EdgeHubSettings) -> str:
    server = settings.ws_server
    if "://" in server:
        server = server.split("://", 1)[1]
    return f"wss://{server.rstrip('/')}/{settings.project_id}/{settings.node_name}/events"


def upgrade_headers(settings: EdgeHubSettings) -> list[tuple[str, str]]:
    return [
        ("Connectionuse", "msg"),
        ("Node_id", settings.node_name),
        ("Project_id", settings.project_id),
    ]


def client_ssl_context(settings: EdgeHubSettings) -> ssl.SSLContext:
    """Mutual TLS: our cert, the server verified against the CA with hostname check."""
    ctx = ssl.create_default_context(cafile=str(settings.tls_ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(settings.tls_cert_file), str(settings.tls_private_key_file))
    return ctx


class WebSocketLink:
    transport = "websocket"

    def __init__(self, ws: ClientConnection, *, max_size: int, write_timeout: float) -> None:
        self._ws = ws
        self._max_size = max_size
        self._write_timeout = write_timeout
        self._lock = asyncio.Lock()

    async def send(self, msg: Message) -> None:
        data = codec.encode(msg).decode("utf-8")
        try:
            async with self._lock, asyncio.timeout(self._write_timeout):
                await self._ws.send(data)
        except TimeoutError as exc:
            raise LinkError(f"write to the cloud timed out after {self._write_timeout}s") from exc
        except (ConnectionClosed, WebSocketException, OSError) as exc:
            raise LinkError(f"write to the cloud failed: {exc}") from exc

    async def recv(self) -> Message:
        try:
            data: Any = await self._ws.recv()
        except (ConnectionClosed, WebSocketException, OSError) as exc:
            raise LinkError(f"the cloud closed the connection: {exc}") from exc
        try:
            return codec.decode(data, max_size=self._max_size)
        except CodecError as exc:
            raise MalformedFrame(f"malformed frame from the cloud: {exc}") from exc

    async def close(self) -> None:
        try:
            async with asyncio.timeout(5):
                await self._ws.close()
        except (TimeoutError, OSError, WebSocketException):
            pass


async def connect_websocket(settings: EdgeHubSettings) -> WebSocketLink:
    """Open the link; raises ``OSError``/``TimeoutError``/``WebSocketException``."""
    ws = await connect(
        ws_url(settings),
        ssl=client_ssl_context(settings),
        additional_headers=upgrade_headers(settings),
        open_timeout=settings.handshake_timeout,
        max_size=settings.max_frame_size,
        ping_interval=None,
        compression=None,
        user_agent_header=None,
    )
    return WebSocketLink(ws, max_size=settings.max_frame_size, write_timeout=settings.write_timeout)
