"""Golden frames: real KubeEdge captures and frames written from protocol.md.

Every frame KubeEdge's edgecore and cloudcore exchanged (tests/data/captures,
copied from shared/captures) must decode, and re-encode to the same JSON
object with the same key order. The frames written from protocol.md
sections 1.1 and 3.4 pin the exact bytes we put on the wire.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from beehive import Message, MessageHeader, MessageRoute, codec

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"


def capture_frames() -> list[Any]:
    params = []
    for path in sorted(CAPTURES.glob("*.jsonl")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            entry = json.loads(line)
            if entry is None or entry["dir"] == "upgrade":
                continue
            params.append(
                pytest.param(entry["frame"], entry, id=f"{path.stem}:{lineno}:{entry['dir']}")
            )
    return params


FRAMES = capture_frames()


def test_the_captures_are_there() -> None:
    # Both files, every frame (the close line and the upgrade are not frames).
    assert len(FRAMES) == 142


@pytest.mark.parametrize(("frame", "entry"), FRAMES)
def test_capture_frame_round_trips(frame: dict[str, Any], entry: dict[str, Any]) -> None:
    assert entry.get("binary") is False  # KubeEdge sends text frames
    raw = json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode()
    msg = codec.decode(raw)
    again = codec.encode(msg)
    assert again.endswith(b"\n")
    reparsed = json.loads(again)
    assert reparsed == frame
    # Same key order at the top, in header and in route (KubeEdge's struct order).
    assert list(reparsed) == list(frame)
    assert list(reparsed["header"]) == list(frame["header"])
    assert list(reparsed["route"]) == list(frame["route"])
    assert codec.to_obj(codec.decode_obj(frame)) == frame


def test_captured_frames_carry_what_we_expect() -> None:
    msgs = [codec.decode_obj(f) for f, _ in (p.values for p in FRAMES)]
    keepalives = [m for m in msgs if m.operation == "keepalive"]
    assert keepalives and all(
        (m.source, m.group, m.resource, m.content) == ("websocket", "resource", "node", "ping")
        for m in keepalives
    )
    acks = [m for m in msgs if m.operation == "response" and m.content == "OK"]
    assert acks and all(m.parent_id for m in acks)
    assert any(m.resource_version for m in msgs)
    assert any(m.content is None for m in msgs)
    assert any(isinstance(m.content, dict) for m in msgs)
    assert not any(m.header.sync for m in msgs)  # viaduct clears sync on the wire


# -- frames written from protocol.md -----------------------------------------------------

GOLDEN: list[tuple[str, bytes, Message]] = [
    (
        "keepalive, content a string (3.4, 3.7)",
        b'{"header":{"msg_id":"6c0f5e4e-0000-4000-8000-000000000001","timestamp":1714000000000},'
        b'"route":{"source":"websocket","group":"resource","operation":"keepalive",'
        b'"resource":"node"},"content":"ping"}\n',
        Message(
            MessageHeader(msg_id="6c0f5e4e-0000-4000-8000-000000000001", timestamp=1714000000000),
            MessageRoute(
                source="websocket", group="resource", operation="keepalive", resource="node"
            ),
            "ping",
        ),
    ),
    (
        "query, content null (6.4)",
        b'{"header":{"msg_id":"q-1","timestamp":1},'
        b'"route":{"source":"edged","group":"meta","operation":"query",'
        b'"resource":"default/configmap/cm"},"content":null}\n',
        Message(
            MessageHeader(msg_id="q-1", timestamp=1),
            MessageRoute(
                source="edged", group="meta", operation="query", resource="default/configmap/cm"
            ),
            None,
        ),
    ),
    (
        "downstream insert with resourceversion, content an object (2.2, 4)",
        b'{"header":{"msg_id":"d-1","timestamp":1714000000123,"resourceversion":"4711"},'
        b'"route":{"source":"edgecontroller","group":"resource","operation":"insert",'
        b'"resource":"default/pod/web"},'
        b'"content":{"kind":"Pod","metadata":{"name":"web","namespace":"default"}}}\n',
        Message(
            MessageHeader(msg_id="d-1", timestamp=1714000000123, resource_version="4711"),
            MessageRoute(
                source="edgecontroller",
                group="resource",
                operation="insert",
                resource="default/pod/web",
            ),
            {"kind": "Pod", "metadata": {"name": "web", "namespace": "default"}},
        ),
    ),
    (
        "ack: response with parent_msg_id and content OK (4.5)",
        b'{"header":{"msg_id":"a-1","parent_msg_id":"d-1","timestamp":1714000000200},'
        b'"route":{"source":"edgecontroller","group":"resource","operation":"response",'
        b'"resource":"default/pod/web"},"content":"OK"}\n',
        Message(
            MessageHeader(msg_id="a-1", parent_msg_id="d-1", timestamp=1714000000200),
            MessageRoute(
                source="edgecontroller",
                group="resource",
                operation="response",
                resource="default/pod/web",
            ),
            "OK",
        ),
    ),
    (
        "every header and route key, in Go's struct order (1.1)",
        b'{"header":{"msg_id":"m","parent_msg_id":"p","timestamp":-5,"resourceversion":"9",'
        b'"sync":true,"type":"channel"},"route":{"source":"s","destination":"d","group":"g",'
        b'"operation":"o","resource":"r"},"content":[1,2.5,true,"x",null,{}]}\n',
        Message(
            MessageHeader(
                msg_id="m",
                parent_msg_id="p",
                timestamp=-5,
                resource_version="9",
                sync=True,
                type="channel",
            ),
            MessageRoute(source="s", destination="d", group="g", operation="o", resource="r"),
            [1, 2.5, True, "x", None, {}],
        ),
    ),
    (
        "empty keys omitted; route always present, even empty (1.1)",
        b'{"header":{"msg_id":"","timestamp":0},"route":{},"content":null}\n',
        Message(),
    ),
    (
        "node patch: JSON text inside a JSON string (6.2)",
        b'{"header":{"msg_id":"n-1","timestamp":2},"route":{"source":"edged","group":"meta",'
        b'"operation":"patch","resource":"null/nodepatch/edge1"},'
        b'"content":"{\\"status\\":{\\"phase\\":\\"Running\\"}}"}\n',
        Message(
            MessageHeader(msg_id="n-1", timestamp=2),
            MessageRoute(
                source="edged", group="meta", operation="patch", resource="null/nodepatch/edge1"
            ),
            '{"status":{"phase":"Running"}}',
        ),
    ),
    (
        "non-ASCII as UTF-8, HTML characters escaped as Go does",
        b'{"header":{"msg_id":"u","timestamp":3},"route":{"source":"bus","group":"user",'
        b'"operation":"upload","resource":"a/b"},'
        b'"content":"gr\xc3\xbc\xc3\x9f \\u003cb\\u003e \\u0026 \\u2028"}\n',
        Message(
            MessageHeader(msg_id="u", timestamp=3),
            MessageRoute(source="bus", group="user", operation="upload", resource="a/b"),
            "grüß <b> & \u2028",
        ),
    ),
    (
        "lease not found: the Object/Err reply shape (10.6)",
        b'{"header":{"msg_id":"r","parent_msg_id":"q","timestamp":4},'
        b'"route":{"source":"edgecontroller","group":"resource","operation":"response",'
        b'"resource":"kube-node-lease/lease/e"},"content":{"Object":null,"Err":{"ErrStatus":'
        b'{"metadata":{},"status":"Failure","reason":"NotFound","code":404}}}}\n',
        Message(
            MessageHeader(msg_id="r", parent_msg_id="q", timestamp=4),
            MessageRoute(
                source="edgecontroller",
                group="resource",
                operation="response",
                resource="kube-node-lease/lease/e",
            ),
            {
                "Object": None,
                "Err": {
                    "ErrStatus": {
                        "metadata": {},
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                    }
                },
            },
        ),
    ),
]


@pytest.mark.parametrize(
    ("wire", "msg"), [(w, m) for _, w, m in GOLDEN], ids=[name for name, _, _ in GOLDEN]
)
def test_golden_frame_encodes_exactly(wire: bytes, msg: Message) -> None:
    assert codec.encode(msg) == wire
    assert codec.encode(msg, newline=False) == wire[:-1]


@pytest.mark.parametrize(
    ("wire", "msg"), [(w, m) for _, w, m in GOLDEN], ids=[name for name, _, _ in GOLDEN]
)
def test_golden_frame_decodes(wire: bytes, msg: Message) -> None:
    assert codec.decode(wire) == msg
    assert codec.decode(wire.decode()) == msg  # text frames arrive as str
    assert codec.decode(wire[:-1]) == msg  # the newline is optional


def test_unknown_keys_are_ignored_and_missing_keys_are_zero() -> None:
    # Go's decoder ignores keys a struct does not have and zeroes missing ones.
    msg = codec.decode(b'{"header":{"msg_id":"x","extra":1},"route":{"future":"y"},"more":2}')
    assert msg == Message(MessageHeader(msg_id="x"), MessageRoute(), None)
    assert codec.decode(b"{}") == Message()
    assert codec.decode(b'{"header":null,"route":null}') == Message()


def test_explicit_false_and_empty_values_decode_and_are_omitted_again() -> None:
    wire = (
        b'{"header":{"msg_id":"x","parent_msg_id":"","timestamp":1,"resourceversion":"",'
        b'"sync":false,"type":""},"route":{"source":"","group":"g"},"content":""}'
    )
    msg = codec.decode(wire)
    assert msg.header.sync is False and msg.content == ""
    assert codec.encode(msg) == (
        b'{"header":{"msg_id":"x","timestamp":1},"route":{"group":"g"},"content":""}\n'
    )


def test_response_is_built_as_kubeedge_builds_it() -> None:
    req = codec.decode(GOLDEN[2][1])
    resp = req.response("OK")
    obj = codec.to_obj(resp)
    assert obj["header"]["parent_msg_id"] == "d-1"
    assert obj["header"]["msg_id"] not in ("", "d-1")
    assert "resourceversion" not in obj["header"]
    assert obj["route"] == {
        "source": "edgecontroller",
        "group": "resource",
        "operation": "response",
        "resource": "default/pod/web",
    }
    assert obj["content"] == "OK"
