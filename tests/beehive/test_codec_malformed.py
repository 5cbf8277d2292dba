"""Malformed frames: each is refused with a typed CodecError, never anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from beehive import CodecError, MalformedMessage, Message, PayloadTooBig, codec
from beehive.codec import DEFAULT_MAX_SIZE

GOOD_HEADER: dict[str, Any] = {"msg_id": "id", "timestamp": 1}
GOOD_ROUTE: dict[str, Any] = {"source": "s", "group": "g", "operation": "o", "resource": "r"}


def frame(header: Any = None, route: Any = None, **extra: Any) -> bytes:
    obj: dict[str, Any] = {
        "header": GOOD_HEADER if header is None else header,
        "route": GOOD_ROUTE if route is None else route,
        "content": None,
    }
    obj.update(extra)
    return json.dumps(obj).encode()


NOT_JSON = [
    b"",
    b" ",
    b"{",
    b"}",
    b"{'header': {}}",
    b'{"header":{"msg_id":"x"}',
    b'{"header":{"msg_id":"x"}}}',
    b"header",
    b"\x00",
    b'{"content": NaN}',
    b'{"content": Infinity}',
    b'{"content": -Infinity}',
    b'{"content": 1e400}',
    b'{"content": 01}',
    b'{"content": "\x01"}',  # a raw control character inside a string
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    "{}".encode("utf-16"),
    "{}".encode("utf-32"),
]

NOT_AN_OBJECT = [b"[]", b"[{}]", b"null", b"true", b"1", b'"frame"', b"1.5"]

INVALID_UTF8 = [
    b'{"content":"\xff"}',
    b'{"content":"\xc3"}',  # truncated sequence
    b'{"content":"\xed\xa0\x80"}',  # an encoded surrogate
    b'{"content":"\xc0\xaf"}',  # overlong
    b'{"header":{"msg_id":"\x80"}}',
]

WRONG_TYPES: list[tuple[str, Any]] = [
    ("header", []),
    ("header", "x"),
    ("header", 1),
    ("header", True),
    ("route", []),
    ("route", "x"),
    ("route", 0),
    ("route", False),
]
for key in ("msg_id", "parent_msg_id", "resourceversion", "type"):
    for bad in (1, 1.5, True, [], {}, ["x"]):
        WRONG_TYPES.append((f"header.{key}", bad))
for bad in ("1", "x", 1.5, 1e3, True, [], {}, 2**63, -(2**63) - 1):
    WRONG_TYPES.append(("header.timestamp", bad))
for bad in ("true", 1, 0, [], {}):
    WRONG_TYPES.append(("header.sync", bad))
for key in ("source", "destination", "group", "operation", "resource"):
    for bad in (1, 1.5, False, [], {}, ["x"]):
        WRONG_TYPES.append((f"route.{key}", bad))


def with_wrong(path: str, value: Any) -> bytes:
    if "." not in path:
        return (
            frame(**{path: value})
            if path not in ("header", "route")
            else (frame(header=value) if path == "header" else frame(route=value))
        )
    section, key = path.split(".")
    if section == "header":
        return frame(header={**GOOD_HEADER, key: value})
    return frame(route={**GOOD_ROUTE, key: value})


@pytest.mark.parametrize("data", NOT_JSON)
def test_not_json(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        codec.decode(data)


@pytest.mark.parametrize("data", NOT_AN_OBJECT)
def test_not_an_object(data: bytes) -> None:
    with pytest.raises(MalformedMessage, match="must be a JSON object"):
        codec.decode(data)


@pytest.mark.parametrize("data", INVALID_UTF8)
def test_invalid_utf8(data: bytes) -> None:
    with pytest.raises(MalformedMessage, match="UTF-8"):
        codec.decode(data)


@pytest.mark.parametrize(("path", "value"), WRONG_TYPES, ids=[f"{p}={v!r}" for p, v in WRONG_TYPES])
def test_wrong_type_names_the_key(path: str, value: Any) -> None:
    with pytest.raises(MalformedMessage) as info:
        codec.decode(with_wrong(path, value))
    assert path.split(".")[-1] in str(info.value)


def test_int64_limits_are_accepted() -> None:
    for ts in (2**63 - 1, -(2**63), 0):
        assert codec.decode(frame(header={"msg_id": "x", "timestamp": ts})).header.timestamp == ts


def test_huge_frame_is_refused_before_parsing() -> None:
    big = b'{"content":"' + b"x" * 1024 + b'"}'
    with pytest.raises(PayloadTooBig) as info:
        codec.decode(big, max_size=1000)
    assert info.value.size == len(big) and info.value.max_size == 1000
    # not even parsed: a broken frame over the cap is "too big", not "malformed"
    with pytest.raises(PayloadTooBig):
        codec.decode(b"{" * 2000, max_size=1000)
    assert codec.decode(big, max_size=None).content == "x" * 1024


def test_default_cap_is_kubeedges_32_mib() -> None:
    assert DEFAULT_MAX_SIZE == 32 * 1024 * 1024
    with pytest.raises(PayloadTooBig):
        codec.decode(b" " * (DEFAULT_MAX_SIZE + 1))


def test_cap_counts_utf8_bytes_of_text_frames() -> None:
    text = '{"content":"' + "é" * 600 + '"}'  # 600 characters, 1200 bytes
    with pytest.raises(PayloadTooBig):
        codec.decode(text, max_size=1000)


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting(depth: int) -> None:
    data = b'{"content":' + b"[" * depth + b"]" * depth + b"}"
    try:
        msg = codec.decode(data)
    except MalformedMessage:
        return  # too deep for the parser: refused with a typed error
    assert isinstance(msg, Message)


def test_deeply_nested_objects_in_header_position() -> None:
    data = b'{"header":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}"
    with pytest.raises(MalformedMessage):
        codec.decode(data)


def test_decode_of_a_non_frame_type() -> None:
    with pytest.raises(MalformedMessage):
        codec.decode(12)  # type: ignore[arg-type]


def test_decode_obj_refuses_non_objects() -> None:
    for obj in ([], None, "x", 1):
        with pytest.raises(MalformedMessage):
            codec.decode_obj(obj)


def test_buffers_are_accepted() -> None:
    wire = frame()
    assert codec.decode(bytearray(wire)) == codec.decode(wire)
    assert codec.decode(memoryview(wire)) == codec.decode(wire)  # type: ignore[arg-type]


def test_encode_refuses_content_that_is_not_json() -> None:
    for content in (float("nan"), float("inf"), {1, 2}, object()):
        m = Message.new(source="s", group="g", operation="o", resource="r", content=content)
        with pytest.raises(CodecError):
            codec.encode(m)


def test_lone_surrogates_are_written_as_replacement_characters() -> None:
    # JSON may carry "\ud800"; Go writes invalid text as U+FFFD, and so do we.
    msg = codec.decode(b'{"content":"a\\ud800b"}')
    wire = codec.encode(msg)
    assert json.loads(wire)["content"] == "a\ufffdb"


def test_all_errors_are_codec_errors() -> None:
    assert issubclass(MalformedMessage, CodecError)
    assert issubclass(PayloadTooBig, CodecError)


def test_bytes_content_is_written_as_base64_like_go() -> None:
    m = Message.new(source="s", group="g", operation="o", resource="r", content=b"\x00\xffhi")
    assert json.loads(codec.encode(m))["content"] == "AP9oaQ=="
    nested = Message.new(
        source="s", group="g", operation="o", resource="r", content={"raw": bytearray(b"ok")}
    )
    assert json.loads(codec.encode(nested))["content"] == {"raw": "b2s="}
