"""The QUIC link to our cloudhub (docs/protocol-quic.md).

IETF QUIC through aioquic, ALPN ``kubeedge-msg/1``, mutual TLS with the server
verified against the KubeEdge CA with hostname checking. The session:

1. the first bidirectional stream is the control stream: one ``header``
   message whose content is the canonical http.Header JSON (``Node_id``,
   ``Project_id``, ``Connectionuse``); the server answers ``ack`` or ``nack``;
2. a second bidirectional stream starting with the 3 bytes ``msg`` carries
   every message of the session, both ways, in order.

Frames are viaduct's 10-byte packer header plus the message JSON
(:mod:`kecommon.quicframing`). A malformed frame closes the connection with
application error 1 and surfaces as :class:`MalformedFrame`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived

from beehive.message import Message
from edgecore.edgehub.errors import LinkError, MalformedFrame
from edgecore.edgehub.settings import EdgeHubSettings
from kecommon import quicframing as qf

__all__ = ["QuicLink", "connect_quic"]

IDLE_TIMEOUT = 30.0
#: messages read but not yet taken by the hub; above this the link is failed
#: rather than buffering without bound (QUIC flow control alone would not stop it)
MAX_QUEUED = 1024


class _Closed:
    def __init__(self, error: LinkError) -> None:
        self.error = error


class _Protocol(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_size = qf.DEFAULT_MAX_SIZE
        self.control_id: int | None = None
        self.msg_id: int | None = None
        self._parsers: dict[int, qf.MessageParser] = {}
        self.control: asyncio.Queue[Message | _Closed] = asyncio.Queue()
        self.messages: asyncio.Queue[Message | _Closed] = asyncio.Queue()

    def open_stream(self) -> int:
        stream_id = int(self._quic.get_next_available_stream_id())
        self._parsers[stream_id] = qf.MessageParser(max_size=self.max_size)
        return stream_id

    def write(self, stream_id: int, data: bytes) -> None:
        self._quic.send_stream_data(stream_id, data)
        self.transmit()

    def fail(self, code: int, reason: str) -> None:
        self._quic.close(error_code=code, reason_phrase=reason)
        self.transmit()
        self._terminate(MalformedFrame(reason) if code == qf.CODE_MALFORMED else LinkError(reason))

    def _terminate(self, error: LinkError) -> None:
        for q in (self.control, self.messages):
            q.put_nowait(_Closed(error))

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            parser = self._parsers.get(event.stream_id)
            if parser is None:
                self.fail(qf.CODE_MALFORMED, f"data on unexpected stream {event.stream_id}")
                return
            try:
                msgs = parser.feed(event.data)
            except qf.FrameTooBig as exc:
                self.fail(qf.CODE_TOO_BIG, f"malformed frame from the cloud: {exc}")
                return
            except qf.FramingError as exc:
                self.fail(qf.CODE_MALFORMED, f"malformed frame from the cloud: {exc}")
                return
            queue = self.control if event.stream_id == self.control_id else self.messages
            for m in msgs:
                if queue.qsize() >= MAX_QUEUED:
                    self.fail(qf.CODE_NORMAL, "the hub is not reading; link dropped")
                    return
                queue.put_nowait(m)
            if event.end_stream:
                self._terminate(LinkError("the cloud ended the stream"))
        elif isinstance(event, ConnectionTerminated):
            self._terminate(
                LinkError(
                    f"the cloud closed the QUIC connection: code {event.error_code} "
                    f"{event.reason_phrase}"
                )
            )


class QuicLink:
    transport = "quic"

    def __init__(
        self, proto: _Protocol, stack: contextlib.AsyncExitStack, *, max_size: int
    ) -> None:
        self._proto = proto
        self._stack = stack
        self._max_size = max_size
        self._closed = False

    async def send(self, msg: Message) -> None:
        if self._closed or self._proto.msg_id is None:
            raise LinkError("the QUIC link is closed")
        try:
            self._proto.write(self._proto.msg_id, qf.encode_message(msg, max_size=self._max_size))
        except qf.FrameTooBig as exc:
            raise LinkError(f"message too big for the link: {exc}") from exc

    async def recv(self) -> Message:
        item = await self._proto.messages.get()
        if isinstance(item, _Closed):
            self._proto.messages.put_nowait(item)
            raise item.error
        return item

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._stack.aclose()


def _split(server: str) -> tuple[str, int]:
    if "://" in server:
        server = server.split("://", 1)[1]
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


async def connect_quic(settings: EdgeHubSettings) -> QuicLink:
    """Open the QUIC session; raises ``OSError``/``TimeoutError``/``LinkError``."""
    host, port = _split(settings.quic_server)
    config = QuicConfiguration(
        is_client=True,
        alpn_protocols=[qf.ALPN],
        server_name=host,
        verify_mode=ssl.CERT_REQUIRED,
        idle_timeout=IDLE_TIMEOUT,
        max_stream_data=4 * 1024 * 1024,
    )
    config.load_verify_locations(cafile=str(settings.tls_ca_file))
    config.load_cert_chain(str(settings.tls_cert_file), str(settings.tls_private_key_file))
    stack = contextlib.AsyncExitStack()
    try:
        async with asyncio.timeout(settings.handshake_timeout):
            opened = await stack.enter_async_context(
                connect(host, port, configuration=config, create_protocol=_Protocol)
            )
            assert isinstance(opened, _Protocol)
            proto = opened
            proto.max_size = settings.max_frame_size
            proto.control_id = proto.open_stream()
            header = Message.new(
                source="",
                group="",
                operation=qf.OP_HEADER,
                resource=qf.OP_HEADER,
                content=qf.encode_header_content(
                    {
                        "node_id": settings.node_name,
                        "project_id": settings.project_id,
                        "connectionuse": "msg",
                    }
                ),
            )
            proto.write(proto.control_id, qf.encode_message(header))
            answer = await proto.control.get()
            if isinstance(answer, _Closed):
                raise answer.error
            if answer.content != "ack":
                raise LinkError(f"the cloud refused the QUIC session: {answer.content!r}")
            proto.msg_id = proto.open_stream()
            proto.write(proto.msg_id, qf.USE_TYPE_MSG)
    except BaseException:
        with contextlib.suppress(Exception):
            await stack.aclose()
        raise
    return QuicLink(proto, stack, max_size=settings.max_frame_size)
