"""kecommon.quicframing: the packer header of docs/protocol-quic.md."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beehive import codec
from beehive.message import Message
from kecommon import quicframing as qf


def test_header_bytes() -> None:
    frame = qf.encode_frame(b"hello")
    assert frame[:10] == bytes([0x01, 0x01, 0x01, 0x00, 0x01, 0x00, 0, 0, 0, 5])
    assert frame[10:] == b"hello"


def test_message_frame_is_the_websocket_bytes() -> None:
    msg = Message.new(
        source="websocket", group="resource", operation="keepalive", resource="node", content="ping"
    )
    frame = qf.encode_message(msg)
    assert frame[10:] == codec.encode(msg)
    parser = qf.MessageParser()
    (back,) = parser.feed(frame)
    assert back == msg
    assert parser.at_boundary


@given(st.lists(st.binary(max_size=50), max_size=8), st.integers(min_value=1, max_value=17))
def test_incremental_any_split(payloads: list[bytes], chunk: int) -> None:
    data = b"".join(qf.encode_frame(p) for p in payloads)
    parser = qf.FrameParser()
    out: list[bytes] = []
    for i in range(0, len(data), chunk):
        out.extend(parser.feed(data[i : i + chunk]))
    assert out == payloads
    assert parser.at_boundary and parser.buffered == 0


def test_partial_frame_is_not_at_boundary() -> None:
    parser = qf.FrameParser()
    assert parser.feed(qf.encode_frame(b"abc")[:11]) == []
    assert not parser.at_boundary
    assert parser.feed(b"bc") == [b"abc"]


def test_size_cap_checked_from_the_header_alone() -> None:
    parser = qf.FrameParser(max_size=100)
    header = bytes([1, 1, 1, 0, 1, 0]) + (2**32 - 1).to_bytes(4, "big")
    with pytest.raises(qf.FrameTooBig) as err:
        parser.feed(header)
    assert err.value.code == 2 and err.value.size == 2**32 - 1
    assert parser.buffered == 0  # nothing of the payload was allocated
    with pytest.raises(qf.FrameTooBig):  # stays failed
        parser.feed(b"x")
    with pytest.raises(qf.FrameTooBig):
        qf.encode_frame(b"x" * 101, max_size=100)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (bytes([2, 1, 1, 0, 1, 0, 0, 0, 0, 1]), "version"),
        (bytes([1, 1, 1, 0, 2, 0, 0, 0, 0, 1]), "package type"),
        (bytes([1, 1, 1, 0, 1, 0x80, 0, 0, 0, 1]), "compression"),
    ],
)
def test_malformed_headers(header: bytes, reason: str) -> None:
    with pytest.raises(qf.MalformedFrame, match=reason) as err:
        qf.FrameParser().feed(header + b"x")
    assert err.value.code == 1


def test_payload_not_a_message() -> None:
    with pytest.raises(qf.MalformedFrame, match="not a message"):
        qf.MessageParser().feed(qf.encode_frame(b"{not json"))
    with pytest.raises(qf.MalformedFrame, match="not a message"):
        qf.MessageParser().feed(qf.encode_frame(b"[1]"))


def test_empty_payload_frame() -> None:
    assert qf.FrameParser().feed(qf.encode_frame(b"") + qf.encode_frame(b"a")) == [b"", b"a"]


def test_header_content() -> None:
    text = qf.encode_header_content({"node_id": "e1", "project_id": "p", "ConnectionUse": "msg"})
    assert json.loads(text) == {"Node_id": ["e1"], "Project_id": ["p"], "Connectionuse": ["msg"]}
    assert qf.decode_header_content(text) == {
        "node_id": "e1",
        "project_id": "p",
        "connectionuse": "msg",
    }
    assert qf.decode_header_content({"NODE_ID": "x", "a": []}) == {"node_id": "x", "a": ""}
    for bad in ["nope", "[1]", {"a": 1}]:
        with pytest.raises(qf.MalformedFrame):
            qf.decode_header_content(bad)
