"""Property tests: arbitrary messages round-trip; arbitrary input never crashes."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beehive import CodecError, Message, MessageHeader, MessageRoute, codec

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)

messages = st.builds(
    Message,
    header=st.builds(
        MessageHeader,
        msg_id=st.text(),
        parent_msg_id=st.text(),
        timestamp=INT64,
        resource_version=st.text(),
        sync=st.booleans(),
        type=st.text(),
    ),
    route=st.builds(
        MessageRoute,
        source=st.text(),
        destination=st.text(),
        group=st.text(),
        operation=st.text(),
        resource=st.text(),
    ),
    content=json_values,
)

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(messages)
def test_any_message_round_trips(msg: Message) -> None:
    wire = codec.encode(msg)
    assert wire.endswith(b"\n")
    assert b"\n" not in wire[:-1]  # one frame, one line
    assert codec.decode(wire) == msg
    assert codec.encode(codec.decode(wire)) == wire


@FAST
@given(messages)
def test_encoding_is_plain_json_with_omitted_empty_keys(msg: Message) -> None:
    obj = json.loads(codec.encode(msg))
    assert list(obj) == ["header", "route", "content"]
    header = obj["header"]
    assert header["msg_id"] == msg.header.msg_id
    assert header["timestamp"] == msg.header.timestamp
    assert ("sync" in header) == msg.header.sync
    for key, value in (
        ("parent_msg_id", msg.header.parent_msg_id),
        ("resourceversion", msg.header.resource_version),
        ("type", msg.header.type),
    ):
        assert (key in header) == bool(value)
    assert set(obj["route"]) == {k for k, v in vars_of(msg.route).items() if v}


def vars_of(route: MessageRoute) -> dict[str, str]:
    return {
        k: getattr(route, k) for k in ("source", "destination", "group", "operation", "resource")
    }


@FAST
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_anything_but_codec_error(data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except CodecError:
        return
    assert isinstance(msg, Message)


@FAST
@given(st.text(max_size=256))
def test_arbitrary_text_never_raises_anything_but_codec_error(data: str) -> None:
    with contextlib.suppress(CodecError):
        codec.decode(data)


@FAST
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_codec_error(value: Any) -> None:
    try:
        msg = codec.decode(json.dumps(value).encode())
    except CodecError:
        return
    assert isinstance(value, dict)
    codec.encode(msg)  # whatever decodes also encodes


@FAST
@given(
    st.sampled_from(["header", "route"]),
    st.sampled_from(
        [
            "msg_id",
            "parent_msg_id",
            "timestamp",
            "resourceversion",
            "sync",
            "type",
            "source",
            "destination",
            "group",
            "operation",
            "resource",
        ]
    ),
    json_values,
)
def test_any_value_in_any_slot_is_accepted_or_refused_cleanly(
    section: str, key: str, value: Any
) -> None:
    obj: dict[str, Any] = {
        "header": {"msg_id": "x", "timestamp": 1},
        "route": {"source": "s"},
        "content": None,
    }
    obj[section][key] = value
    try:
        msg = codec.decode(json.dumps(obj).encode())
    except CodecError:
        return
    codec.encode(msg)


@FAST
@given(messages, st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=4))
def test_corrupted_frames_never_raise_anything_but_codec_error(
    msg: Message, at: int, junk: bytes
) -> None:
    wire = codec.encode(msg)
    at = at % len(wire)
    corrupted = wire[:at] + junk + wire[at + len(junk) :]
    with contextlib.suppress(CodecError):
        codec.decode(corrupted)
