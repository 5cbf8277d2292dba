"""The edge hub core (edgecore.edgehub.protocol) without an event loop.

Every input carries an explicit ``now``; the random source is seeded. These
tests reach full branch coverage of protocol.py and events.py.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from beehive import codec
from beehive.message import Message
from edgecore.edgehub import events, protocol
from edgecore.edgehub.errors import InvalidState
from edgecore.edgehub.protocol import EdgeHubProtocol
from edgecore.edgehub.settings import EdgeHubSettings
from fixtures.minicloud import capture_lines, shape

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _settings(**overrides: object) -> EdgeHubSettings:
    values: dict[str, object] = {
        "node_name": "edge1",
        "http_server": "https://cloud:10002",
        "heartbeat": 15.0,
        "message_qps": 2.0,
        "message_burst": 2,
        "reconnect_initial_backoff": 1.0,
        "reconnect_max_backoff": 8.0,
        "rotation_retry_max": 4.0,
    }
    values.update(overrides)
    return EdgeHubSettings(**values)  # type: ignore[arg-type]


def _core(**overrides: object) -> EdgeHubProtocol:
    return EdgeHubProtocol(_settings(**overrides), rng=random.Random(7))


def _connected(now: float = 0.0, **overrides: object) -> EdgeHubProtocol:
    core = _core(**overrides)
    core.connection_made(now)
    core.events_received()
    core.messages_to_send()
    return core


def _msg(
    group: str = "meta",
    *,
    op: str = "insert",
    source: str = "edged",
    parent: str = "",
    sync: bool = False,
) -> Message:
    msg = Message.new(
        source=source, group=group, operation=op, resource="default/pod/a", parent_msg_id=parent
    )
    msg.header.sync = sync
    return msg


def _install(core: EdgeHubProtocol, *, now: float, lifetime_s: float, age_s: float = 0.0) -> None:
    """A certificate issued ``age_s`` seconds ago, valid ``lifetime_s`` seconds."""
    not_before = T0 - dt.timedelta(seconds=age_s)
    core.certificate_installed(
        not_before=not_before,
        not_after=not_before + dt.timedelta(seconds=lifetime_s),
        now=now,
        wall_now=T0,
    )


# -- link state and keepalive ------------------------------------------------------


def test_connect_sends_a_keepalive_at_once_then_every_heartbeat() -> None:
    core = _core()
    assert core.state is protocol.CONNECTING and not core.connected
    assert core.get_timer() is None
    core.connection_made(100.0)
    assert core.connected and core.sessions == 1
    assert core.events_received() == [events.CloudConnected(1)]
    (first,) = core.messages_to_send()
    assert (first.operation, first.resource, first.content) == ("keepalive", "node", "ping")
    assert core.get_timer() == 115.0
    core.handle_timer(114.9)
    assert not core.has_messages_to_send
    core.handle_timer(115.0)
    assert [m.operation for m in core.messages_to_send()] == ["keepalive"]
    assert core.get_timer() == 130.0
    assert core.events_received() == []


def test_keepalive_is_shaped_as_the_capture() -> None:
    core = _core()
    core.connection_made(0.0)
    (ours,) = core.messages_to_send()
    captured = next(
        line["frame"]
        for line in capture_lines()
        if line["dir"] == "edge->cloud" and line["frame"]["route"].get("operation") == "keepalive"
    )
    assert shape(codec.to_obj(ours)) == shape(captured)


def test_reconnect_backoff_grows_with_jitter_and_resets_on_connect() -> None:
    core = _core()
    now = 0.0
    delays = []
    for ceiling in (1, 2, 4, 8, 8):
        core.connect_failed("(OSError) refused", now=now)
        assert core.state is protocol.BACKING_OFF
        (failed,) = core.events_received()
        assert isinstance(failed, events.ConnectionFailed)
        assert failed.reason == "(OSError) refused"
        assert ceiling / 2 <= failed.retry_in <= ceiling
        delays.append(failed.retry_in)
        due = core.get_timer()
        assert due is not None and due == pytest.approx(now + failed.retry_in)
        core.handle_timer(due - 0.01)
        assert core.state is protocol.BACKING_OFF
        core.handle_timer(due)
        assert core.state is protocol.CONNECTING
        assert core.events_received() == [events.BackoffElapsed()]
        assert core.get_timer() is None
        now = due
    assert len(set(delays)) == len(delays)
    core.connection_made(now)
    core.connection_lost("closed by the cloud", now=now + 1)
    assert core.state is protocol.BACKING_OFF and not core.connected
    _, lost = core.events_received()
    assert isinstance(lost, events.CloudDisconnected)
    assert lost.reason == "closed by the cloud"
    assert 0.5 <= lost.retry_in <= 1.0  # reset by the connect
    assert core.get_timer() == pytest.approx(now + 1 + lost.retry_in)


def test_calls_out_of_order_are_refused() -> None:
    core = _connected()
    with pytest.raises(InvalidState, match="connect_failed in state connected"):
        core.connect_failed("x", now=1.0)
    with pytest.raises(InvalidState, match="connection_made in state connected"):
        core.connection_made(1.0)
    core.connection_lost("gone", now=1.0)
    core.events_received()
    # a second report of the same loss changes nothing
    core.connection_lost("gone again", now=1.0)
    assert core.events_received() == []
    assert core.state is protocol.BACKING_OFF


def test_a_loss_drops_what_the_link_did_not_take() -> None:
    core = _connected()
    core.handle_timer(15.0)  # a keepalive waits in the outbox
    core.connection_lost("gone", now=16.0)
    assert core.messages_to_send() == []
    reconnect = core.get_timer()  # only the reconnect is timed
    assert reconnect is not None and reconnect > 16.0


# -- downstream ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (_msg("resource", source="edgecontroller"), ("meta", True)),
        (_msg("twin", source="devicecontroller"), ("twin", True)),
        (_msg("user", source="router_eventbus"), ("eventbus", False)),
        (_msg("taskmanager", source="taskmanager"), ("taskmanager", False)),
    ],
)
def test_downstream_messages_are_routed_by_group(msg: Message, expected: tuple[str, bool]) -> None:
    core = _connected()
    core.message_received(msg, now=1.0)
    (routed,) = core.events_received()
    assert routed == events.MessageRouted(msg, expected[0], to_group=expected[1])
    assert not core.has_messages_to_send


def test_answers_go_to_the_waiting_request_and_unknown_groups_are_dropped() -> None:
    core = _connected()
    answer = _msg("resource", op="response", source="edgecontroller", parent="req-1")
    stray = _msg("nosuchgroup", source="x")
    core.message_received(answer, now=1.0)
    core.message_received(stray, now=1.0)
    got = core.events_received()
    assert got[0] == events.ResponseReceived(answer)
    assert isinstance(got[1], events.DownstreamDropped) and got[1].msg is stray
    assert "nosuchgroup" in got[1].reason


@pytest.mark.parametrize("op", ["ping", "pong", "config"])
def test_control_messages_are_answered_with_ack(op: str) -> None:
    core = _connected()
    ctl = _msg("", op=op, source="cloudhub")
    core.message_received(ctl, now=1.0)
    (reply,) = core.messages_to_send()
    assert (reply.operation, reply.content, reply.parent_id) == ("response", "ack", ctl.msg_id)
    assert core.events_received() == [events.ControlAnswered(ctl, reply)]
    assert core.upstream_origin(reply.msg_id) is None  # not a module's message


def test_a_message_after_the_loss_is_dropped() -> None:
    core = _core()
    msg = _msg("resource", source="edgecontroller")
    core.message_received(msg, now=0.0)
    assert core.events_received() == [events.DownstreamDropped(msg, "received while not connected")]


# -- upstream ------------------------------------------------------------------------


def test_upstream_is_refused_at_once_while_disconnected() -> None:
    core = _core()
    request = _msg(op="query", sync=True)
    ack = _msg(op="response")
    core.send_upstream(request, now=0.0)
    core.send_upstream(ack, now=0.0)
    refused_request, refused_ack = core.events_received()
    assert isinstance(refused_request, events.UpstreamRefused)
    assert refused_request.reason == "the cloud is disconnected"
    assert refused_request.reply is not None
    assert (refused_request.reply.operation, refused_request.reply.parent_id) == (
        "error",
        request.msg_id,
    )
    assert refused_request.reply.content == "the cloud is disconnected"
    assert refused_ack == events.UpstreamRefused(ack, "the cloud is disconnected", None)
    assert not core.has_messages_to_send


def test_upstream_goes_through_the_token_bucket_in_order() -> None:
    core = _connected()
    msgs = [_msg(sync=(i == 0)) for i in range(4)]
    core.send_upstream(msgs[0], now=0.0)
    core.send_upstream(msgs[1], now=0.0)
    assert not core.upstream_blocked  # the burst of 2
    core.send_upstream(msgs[2], now=0.0)
    assert core.upstream_blocked
    with pytest.raises(InvalidState, match="waits for a token"):
        core.send_upstream(msgs[3], now=0.0)
    wire = core.messages_to_send()
    assert [m.msg_id for m in wire] == [m.msg_id for m in msgs[:2]]
    # the wire copy does not carry beehive's sync flag; the original keeps it
    assert not wire[0].header.sync and msgs[0].header.sync
    assert core.upstream_origin(wire[0].msg_id) is msgs[0]
    assert core.get_timer() == pytest.approx(0.5)  # 2 tokens a second
    core.handle_timer(0.5)
    assert not core.upstream_blocked
    assert [m.msg_id for m in core.messages_to_send()] == [msgs[2].msg_id]
    # the previous batch is forgotten once the next one is taken
    assert core.upstream_origin(wire[0].msg_id) is None
    assert core.upstream_origin(msgs[2].msg_id) is msgs[2]
    assert core.events_received() == []


def test_a_token_short_by_rounding_is_waited_for_again() -> None:
    # 1/49 * 49 < 1 in floating point: the bucket is not full at the deadline
    core = _connected(message_qps=49.0, message_burst=1)
    core.send_upstream(_msg(), now=0.0)
    core.send_upstream(_msg(), now=0.0)
    core.messages_to_send()
    for _ in range(3):
        due = core.get_timer()
        assert due is not None and due < 1.0
        core.handle_timer(due)
        if not core.upstream_blocked:
            break
    assert not core.upstream_blocked
    assert len(core.messages_to_send()) == 1


def test_a_loss_refuses_the_waiting_and_the_queued_upstream_messages() -> None:
    core = _connected(message_burst=1)
    queued = _msg(op="query", sync=True)
    waiting = _msg(op="query", sync=True)
    core.send_upstream(queued, now=0.0)
    core.send_upstream(waiting, now=0.0)
    core.handle_timer(0.1)  # nothing due yet
    core.connection_lost("gone", now=0.2)
    got = core.events_received()
    assert isinstance(got[0], events.CloudDisconnected)
    refused = [e for e in got if isinstance(e, events.UpstreamRefused)]
    assert [e.msg for e in refused] == [queued, waiting]
    assert all(e.reply is not None and e.reply.operation == "error" for e in refused)
    assert not core.upstream_blocked and not core.has_messages_to_send


def test_a_failed_write_refuses_the_modules_messages_it_did_not_send() -> None:
    core = _connected()
    request = _msg(op="query", sync=True)
    ack = _msg(op="response")
    core.handle_timer(15.0)  # keepalive first
    core.send_upstream(request, now=15.0)
    core.send_upstream(ack, now=15.0)
    batch = core.messages_to_send()
    assert [m.operation for m in batch] == ["keepalive", "query", "response"]
    core.write_failed(batch, reason="write to the cloud timed out", now=16.0)
    got = core.events_received()
    assert [(e.msg, e.reason) for e in got if isinstance(e, events.UpstreamRefused)] == [
        (request, "write to the cloud timed out"),
        (ack, "write to the cloud timed out"),
    ]
    assert isinstance(got[0], events.UpstreamRefused) and got[0].reply is not None
    assert isinstance(got[1], events.UpstreamRefused) and got[1].reply is None


# -- certificates ------------------------------------------------------------------


def test_rotation_is_due_at_70_to_90_percent_of_the_lifetime_while_connected() -> None:
    core = _core(heartbeat=300.0)
    assert not core.certificate_expired(0.0)  # no certificate yet
    _install(core, now=1000.0, lifetime_s=100.0, age_s=10.0)
    (installed,) = core.events_received()
    assert isinstance(installed, events.CertificateInstalled)
    lo, hi = T0 + dt.timedelta(seconds=60), T0 + dt.timedelta(seconds=80)
    assert lo <= installed.rotation_at <= hi
    due = 1000.0 + (installed.rotation_at - T0).total_seconds()
    assert core.get_timer() is None  # not connected: no rotation
    assert not core.certificate_expired(1089.9) and core.certificate_expired(1090.0)
    core.connection_made(1000.0)
    core.events_received()
    assert core.get_timer() == pytest.approx(due)
    core.handle_timer(due)
    assert core.events_received() == [events.RotationDeadlineReached()]
    # while the attempt runs only the keepalive is timed
    assert core.get_timer() == 1300.0


def test_a_failed_rotation_is_retried_with_backoff_then_reconnects_at_once() -> None:
    core = _core()
    _install(core, now=0.0, lifetime_s=10.0, age_s=10.0)  # deadline passed
    core.connection_made(0.0)
    core.events_received()
    core.handle_timer(0.0)
    assert core.events_received() == [events.RotationDeadlineReached()]
    for ceiling in (1, 2, 4, 4):
        core.rotation_failed("cloud unreachable", now=0.0)
        (failed,) = core.events_received()
        assert isinstance(failed, events.RotationFailed) and failed.reason == "cloud unreachable"
        assert ceiling / 2 <= failed.retry_in <= ceiling
        assert core.get_timer() == pytest.approx(failed.retry_in)
        core.handle_timer(failed.retry_in)
        assert core.events_received() == [events.RotationDeadlineReached()]
    core.rotation_succeeded(
        not_before=T0, not_after=T0 + dt.timedelta(days=1), now=5.0, wall_now=T0
    )
    installed, rotated, close = core.events_received()
    assert isinstance(installed, events.CertificateInstalled)
    assert rotated == events.CertificateRotated()
    assert close == events.LinkCloseRequested("certificate rotated")
    core.connection_lost("certificate rotated", now=5.0)
    assert core.events_received() == [events.CloudDisconnected("certificate rotated", 0.0)]
    assert core.state is protocol.CONNECTING  # no back-off
    core.connection_made(5.0)
    core.events_received()
    assert core.get_timer() == 20.0  # the new deadline is far away: keepalive first


def test_a_rotation_result_after_the_session_ended() -> None:
    core = _core()
    _install(core, now=0.0, lifetime_s=10.0, age_s=10.0)
    core.connection_made(0.0)
    core.handle_timer(0.0)  # attempt starts
    core.connection_lost("gone", now=1.0)
    core.events_received()
    core.rotation_failed("too late", now=1.0)  # the next session starts afresh
    assert core.events_received() == []
    core.rotation_succeeded(
        not_before=T0, not_after=T0 + dt.timedelta(days=1), now=1.0, wall_now=T0
    )
    got = core.events_received()
    assert [type(e) for e in got] == [events.CertificateInstalled, events.CertificateRotated]
    assert core.state is protocol.BACKING_OFF  # no close requested: there is no link


def test_a_deadline_missed_while_disconnected_is_due_on_connect() -> None:
    core = _core()
    _install(core, now=0.0, lifetime_s=10.0)
    core.connection_made(0.0)
    core.connection_lost("gone", now=1.0)
    core.handle_timer(100.0)  # reconnect due; no rotation while disconnected
    assert [type(e) for e in core.events_received()][-1] is events.BackoffElapsed
    core.connection_made(100.0)
    core.events_received()
    due = core.get_timer()
    assert due is not None and due < 100.0
    core.handle_timer(100.0)
    assert core.events_received() == [events.RotationDeadlineReached()]


def test_no_rotation_when_disabled() -> None:
    core = _core(rotate_certificates=False)
    _install(core, now=0.0, lifetime_s=10.0, age_s=10.0)
    core.connection_made(0.0)
    core.events_received()
    assert core.get_timer() == 15.0
    core.handle_timer(15.0)
    assert core.events_received() == []
