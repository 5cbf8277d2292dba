"""JSON codec for beehive messages, byte-compatible with KubeEdge's.

KubeEdge writes one message per WebSocket frame with gorilla's ``WriteJSON``
(Go ``encoding/json`` plus a trailing newline); see protocol.md sections 1.1
and 3.4. Keys tagged ``omitempty`` in Go are omitted when empty:
``parent_msg_id``, ``resourceversion``, ``sync`` (false), ``type`` and every
route key. ``msg_id`` and ``timestamp`` are always written, and so is
``content`` (``null`` when there is none).

Encoding matches Go byte for byte where it matters: compact separators, no
ASCII escaping of other characters, but ``<``, ``>``, ``&``, U+2028 and U+2029
escaped as ``\\u003c`` and so on (``json.Encoder`` escapes HTML by default),
and a lone UTF-16 surrogate written as U+FFFD, as Go does with invalid text.

Decoding accepts everything Go's decoder accepts for these structs (unknown
keys ignored, missing keys zero) but rejects values of the wrong JSON type,
because Go's decoder fails on those too. It is stricter than Go in two
places, on purpose: the frame must be valid UTF-8 (Go would substitute
U+FFFD), and ``NaN``/``Infinity`` or a number too large for a float64 are
rejected (Go rejects those as well; Python's json would accept them and then
write invalid JSON). Every failure is a :class:`~beehive.exceptions.CodecError`;
nothing else escapes :func:`decode`. The size cap is checked before parsing.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

from beehive.exceptions import MalformedMessage, PayloadTooBig
from beehive.message import Message, MessageHeader, MessageRoute

__all__ = ["DEFAULT_MAX_SIZE", "decode", "decode_obj", "encode", "to_obj"]

#: KubeEdge caps a frame at 32 MiB (viaduct ``MaxPayloadLen``).
DEFAULT_MAX_SIZE = 32 * 1024 * 1024

def _go_default(value: Any) -> Any:
    # Go's encoding/json writes a []byte as a base64 string (protocol.md 11).
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON data")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_go_default
)

# Go's encoding/json escapes these inside strings; they never occur outside one.
_GO_ESCAPES = re.compile("[<>&\u2028\u2029]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} does not fit in a float64")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def to_obj(msg: Message) -> dict[str, Any]:
    """The JSON object for ``msg``, with KubeEdge's key order and omissions."""
    h = msg.header
    header: dict[str, Any] = {"msg_id": h.msg_id}
    if h.parent_msg_id:
        header["parent_msg_id"] = h.parent_msg_id
    header["timestamp"] = h.timestamp
    if h.resource_version:
        header["resourceversion"] = h.resource_version
    if h.sync:
        header["sync"] = True
    if h.type:
        header["type"] = h.type
    r = msg.route
    route: dict[str, Any] = {}
    if r.source:
        route["source"] = r.source
    if r.destination:
        route["destination"] = r.destination
    if r.group:
        route["group"] = r.group
    if r.operation:
        route["operation"] = r.operation
    if r.resource:
        route["resource"] = r.resource
    return {"header": header, "route": route, "content": msg.content}


def encode(msg: Message, *, newline: bool = True) -> bytes:
    """Encode ``msg`` as UTF-8 JSON; with ``newline`` as gorilla's WriteJSON does.

    Content may hold ``bytes``: they are written as a base64 string, as Go
    writes a ``[]byte``.

    Raises:
        MalformedMessage: the content is not JSON data (a set, an object, NaN...).
    """
    try:
        text = _ENCODER.encode(to_obj(msg))
    except ValueError as exc:  # NaN or infinity in the content
        raise MalformedMessage(f"content cannot be encoded as JSON: {exc}") from exc
    except TypeError as exc:  # content that is not JSON data
        raise MalformedMessage(f"content cannot be encoded as JSON: {exc}") from exc
    text = _GO_ESCAPES.sub(_go_escape, text)
    if newline:
        text += "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


def decode(
    data: bytes | bytearray | memoryview | str, *, max_size: int | None = DEFAULT_MAX_SIZE
) -> Message:
    """Decode one frame into a :class:`Message`.

    Raises:
        PayloadTooBig: the frame is larger than ``max_size`` bytes.
        MalformedMessage: the frame is not JSON, not an object, or a field has
            the wrong type.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if max_size is not None and len(raw) > max_size:
            raise PayloadTooBig(len(raw), max_size)
        try:
            # json.loads would also guess UTF-16/32 from bytes; the wire is UTF-8.
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"not valid UTF-8: {exc}") from exc
    elif isinstance(data, str):
        if max_size is not None:
            # The cap is on bytes; only non-ASCII text needs encoding to count them.
            size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
            if size > max_size:
                raise PayloadTooBig(size, max_size)
        text = data
    else:
        raise MalformedMessage(f"a frame is bytes or str, not {type(data).__name__}")
    try:
        obj = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        # Deep nesting raises RecursionError; everything else is a ValueError.
        raise MalformedMessage(f"not valid JSON: {str(exc)[:200]}") from exc
    return decode_obj(obj)


def decode_obj(obj: Any) -> Message:
    """Turn an already parsed JSON value into a :class:`Message`."""
    if not isinstance(obj, dict):
        raise MalformedMessage(f"a message must be a JSON object, got {_kind(obj)}")
    header_obj = _section(obj, "header")
    route_obj = _section(obj, "route")
    header = MessageHeader(
        msg_id=_str(header_obj, "msg_id", "header"),
        parent_msg_id=_str(header_obj, "parent_msg_id", "header"),
        timestamp=_int(header_obj, "timestamp"),
        resource_version=_str(header_obj, "resourceversion", "header"),
        sync=_bool(header_obj, "sync"),
        type=_str(header_obj, "type", "header"),
    )
    route = MessageRoute(
        source=_str(route_obj, "source", "route"),
        destination=_str(route_obj, "destination", "route"),
        group=_str(route_obj, "group", "route"),
        operation=_str(route_obj, "operation", "route"),
        resource=_str(route_obj, "resource", "route"),
    )
    return Message(header=header, route=route, content=obj.get("content"))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }.get(type(value), type(value).__name__)


def _section(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        # Go leaves a missing or null struct at its zero value.
        return {}
    if not isinstance(value, dict):
        raise MalformedMessage(f"{key!r} must be an object, got {_kind(value)}")
    return value


def _str(section: dict[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedMessage(f"{where}.{key} must be a string, got {_kind(value)}")
    return value


def _int(section: dict[str, Any], key: str) -> int:
    value = section.get(key)
    if value is None:
        return 0
    # bool is an int subclass in Python but not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        # Go parses an int64 field with ParseInt, so 1.5 and 1e3 both fail.
        raise MalformedMessage(f"header.{key} must be an integer, got {_kind(value)}")
    if not -(2**63) <= value < 2**63:
        raise MalformedMessage(f"header.{key} does not fit in int64")
    return value


def _bool(section: dict[str, Any], key: str) -> bool:
    value = section.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedMessage(f"header.{key} must be a boolean, got {_kind(value)}")
    return value
