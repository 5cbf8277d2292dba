from __future__ import annotations

from beehive import Message, codec


def test_roundtrip_keepalive() -> None:
    msg = Message.new(
        source="websocket", group="resource", operation="keepalive", resource="node", content="ping"
    )
    assert codec.decode(codec.encode(msg)) == msg
