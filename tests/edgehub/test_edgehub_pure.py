"""The pure parts of the edge hub: routing decisions, back-off, token bucket."""

from __future__ import annotations

import random

import pytest

from beehive import codec
from beehive.message import Message
from edgecore.edgehub import routing
from edgecore.edgehub.backoff import Backoff
from edgecore.edgehub.ratelimit import TokenBucket
from edgecore.edgehub.routing import Action
from fixtures.minicloud import capture_lines, shape


def _msg(
    group: str, *, source: str = "edgecontroller", parent: str = "", op: str = "update"
) -> Message:
    return Message.new(
        source=source, group=group, operation=op, resource="a/b/c", parent_msg_id=parent
    )


@pytest.mark.parametrize(
    ("msg", "action", "target"),
    [
        (_msg("resource"), Action.GROUP, "meta"),
        (_msg("func"), Action.GROUP, "meta"),
        (_msg("resource", parent="p"), Action.RESPOND, ""),
        (_msg("func", parent="p"), Action.RESPOND, ""),
        (_msg("twin", source="devicecontroller"), Action.GROUP, "twin"),
        (_msg("user", parent="p"), Action.RESPOND, ""),
        (_msg("user", source="router_eventbus"), Action.MODULE, "eventbus"),
        (_msg("user", source="router_servicebus"), Action.MODULE, "servicebus"),
        (_msg("user", source="other"), Action.DROP, ""),
        (_msg("taskmanager"), Action.MODULE, "taskmanager"),
        (_msg("whatever"), Action.DROP, ""),
        (_msg("", op="ping"), Action.CONTROL, ""),
        (_msg("resource", op="config"), Action.CONTROL, ""),
        (_msg("resource", op="pong"), Action.CONTROL, ""),
    ],
)
def test_downstream_routes(msg: Message, action: Action, target: str) -> None:
    decision = routing.route_downstream(msg)
    assert (decision.action, decision.target) == (action, target)
    if action is Action.DROP:
        assert decision.reason


def test_control_reply_and_wire_copy() -> None:
    ping = _msg("", op="ping")
    reply = routing.control_reply(ping)
    assert (reply.operation, reply.content, reply.parent_id) == ("response", "ack", ping.msg_id)
    ping.header.sync = True
    wire = routing.to_wire(ping)
    assert not wire.header.sync and ping.header.sync


def test_keepalive_matches_the_capture() -> None:
    captured = [
        line["frame"]
        for line in capture_lines()
        if line["dir"] == "edge->cloud" and line["frame"]["route"].get("operation") == "keepalive"
    ]
    assert len(captured) >= 2
    ours = codec.to_obj(routing.keepalive())
    for frame in captured:
        assert shape(ours) == shape(frame)


def test_connection_notice() -> None:
    n = routing.connection_notice("twin", False)
    assert (n.source, n.group, n.operation, n.resource, n.content) == (
        "edgehub",
        "twin",
        "connect",
        "node/connection",
        "cloud_disconnected",
    )


def test_backoff_is_jittered_doubling_and_capped() -> None:
    b = Backoff(1.0, 8.0, random.Random(1))
    delays = [b.next() for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == 6
    b.reset()
    assert b.next() <= 1.0


def test_token_bucket() -> None:
    tb = TokenBucket(rate=2.0, burst=3)
    assert [tb.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert tb.take(0.0) == pytest.approx(0.5)
    assert tb.take(0.5) == 0.0  # one token refilled
    assert tb.take(10.0) == 0.0  # refill is capped at the burst
    assert [tb.take(10.0) for _ in range(2)] == [0.0, 0.0]
    assert tb.take(10.0) > 0
    with pytest.raises(ValueError, match="messageQPS"):
        TokenBucket(rate=0, burst=1)
