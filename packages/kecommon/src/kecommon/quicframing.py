"""Framing of the kubeedge-py QUIC link (docs/protocol-quic.md).

Every QUIC stream carries frames: viaduct's 10-byte packer header
(``pkg/viaduct/pkg/packer/*.go``, protocol.md 3.6) followed by one beehive
message as JSON. The ``msg`` stream starts with the 3-byte ASCII use type.

Pure and incremental: :class:`FrameParser` is fed bytes as they arrive and
returns whole payloads; the length in the header is checked against the cap
before any payload byte is buffered, so a peer cannot make us allocate more
than ``max_size`` plus one header. After an error the parser stays failed.

Errors carry the QUIC application error code the connection is closed with.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any, ClassVar

from beehive import codec
from beehive.exceptions import CodecError
from beehive.message import Message

__all__ = [
    "ALPN",
    "DEFAULT_MAX_SIZE",
    "HEADER_SIZE",
    "OP_HEADER",
    "PACKAGE_MESSAGE",
    "USE_TYPE_MSG",
    "USE_TYPE_SIZE",
    "VERSION",
    "FrameParser",
    "FrameTooBig",
    "FramingError",
    "MalformedFrame",
    "MessageParser",
    "decode_header_content",
    "encode_frame",
    "encode_header_content",
    "encode_message",
]

ALPN = "kubeedge-msg/1"
HEADER_SIZE = 10
#: Packer version 1.1.1: major<<24 | minor<<16 | fix<<8.
VERSION = 0x01010100
PACKAGE_MESSAGE = 0x01
#: viaduct's ``MaxPayloadLen``.
DEFAULT_MAX_SIZE = 32 * 1024 * 1024
USE_TYPE_MSG = b"msg"
USE_TYPE_SIZE = 3
#: Operation and resource of the first message on the control stream.
OP_HEADER = "header"

_HEADER = struct.Struct(">IBBI")

# QUIC application error codes (docs/protocol-quic.md, "Close codes").
CODE_NORMAL = 0
CODE_MALFORMED = 1
CODE_TOO_BIG = 2
CODE_REFUSED = 3
CODE_NODE_LIMIT = 4
CODE_REPLACED = 5
CODE_KEEPALIVE = 6


class FramingError(Exception):
    """A frame could not be parsed; ``code`` is the QUIC close code to use."""

    code: ClassVar[int] = CODE_MALFORMED


class MalformedFrame(FramingError):
    code = CODE_MALFORMED


class FrameTooBig(FramingError):
    code = CODE_TOO_BIG

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the cap of {max_size} bytes")
        self.size = size
        self.max_size = max_size


def encode_frame(payload: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """Prefix ``payload`` with the packer header.

    Raises:
        FrameTooBig: the payload is larger than ``max_size``.
    """
    if len(payload) > max_size:
        raise FrameTooBig(len(payload), max_size)
    return _HEADER.pack(VERSION, PACKAGE_MESSAGE, 0, len(payload)) + payload


def encode_message(msg: Message, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """One frame holding ``msg`` as JSON, the same bytes as a WebSocket frame."""
    return encode_frame(codec.encode(msg), max_size=max_size)


class FrameParser:
    """Incremental parser: ``feed(bytes) -> [payload, ...]``.

    Invariant: the buffer never holds more than one header plus one payload of
    at most ``max_size`` bytes, because the declared length is checked first.
    """

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._need: int | None = None  # payload length once the header is read
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    @property
    def at_boundary(self) -> bool:
        """True when no partial frame is buffered (a clean place to end)."""
        return not self._buf and self._need is None

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the payloads of the frames it completes.

        Raises:
            MalformedFrame: wrong version or package type, or compression flag.
            FrameTooBig: the declared length is over the cap.
        """
        if self._error is not None:
            raise self._error
        out: list[bytes] = []
        view = memoryview(data)
        while view:
            if self._need is None:
                take = min(HEADER_SIZE - len(self._buf), len(view))
                self._buf += view[:take]
                view = view[take:]
                if len(self._buf) < HEADER_SIZE:
                    break
                self._need = self._check_header(bytes(self._buf))
                self._buf.clear()
            take = min(self._need - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) == self._need:
                out.append(bytes(self._buf))
                self._buf.clear()
                self._need = None
        return out

    def _check_header(self, header: bytes) -> int:
        version, kind, flags, length = _HEADER.unpack(header)
        error: FramingError | None = None
        if version != VERSION:
            error = MalformedFrame(f"unknown packer version 0x{version:08x}")
        elif kind != PACKAGE_MESSAGE:
            error = MalformedFrame(f"unsupported package type 0x{kind:02x}")
        elif flags != 0:
            error = MalformedFrame(f"unsupported flags 0x{flags:02x} (compression is not used)")
        elif length > self.max_size:
            error = FrameTooBig(length, self.max_size)
        if error is not None:
            self._error = error
            self._buf.clear()
            raise error
        return int(length)


class MessageParser:
    """A :class:`FrameParser` that decodes each payload into a :class:`Message`."""

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self._frames = FrameParser(max_size=max_size)

    @property
    def at_boundary(self) -> bool:
        return self._frames.at_boundary

    def feed(self, data: bytes) -> list[Message]:
        """Raises :class:`FramingError` (a payload that is not a message is malformed)."""
        messages = []
        for payload in self._frames.feed(data):
            try:
                messages.append(codec.decode(payload, max_size=None))
            except CodecError as exc:
                raise MalformedFrame(f"the frame is not a message: {exc}") from exc
        return messages


def encode_header_content(headers: Mapping[str, str]) -> str:
    """The control message content: a JSON http.Header (canonical keys, list values)."""
    return json.dumps({_canonical(k): [v] for k, v in headers.items()}, separators=(",", ":"))


def decode_header_content(content: Any) -> dict[str, str]:
    """Parse the control message content into lowercase keys -> first value.

    Accepts the content as a JSON string (what we send) or an already decoded
    object; values may be lists (http.Header) or plain strings.

    Raises:
        MalformedFrame: not a JSON object of strings or string lists.
    """
    obj = content
    if isinstance(content, str | bytes):
        try:
            obj = json.loads(content)
        except ValueError as exc:
            raise MalformedFrame(f"the header content is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MalformedFrame("the header content must be a JSON object")
    result: dict[str, str] = {}
    for key, value in obj.items():
        if isinstance(value, list):
            value = value[0] if value else ""
        if not isinstance(value, str):
            raise MalformedFrame(f"header {key!r} must be a string or a list of strings")
        result.setdefault(str(key).lower(), value)
    return result


def _canonical(key: str) -> str:
    # Go's textproto.CanonicalMIMEHeaderKey: upper-case after each '-'.
    return "-".join(p[:1].upper() + p[1:].lower() for p in key.split("-"))
