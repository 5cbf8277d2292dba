"""The pure per-node delivery core, driven with an explicit clock (no event loop)."""

from __future__ import annotations

import pytest

from beehive.message import Message
from cloudcore.cloudhub import delivery
from cloudcore.cloudhub.delivery import (
    AckTimedOut,
    DeliverySettings,
    KeepaliveExpired,
    MessageAcked,
    MessageDropped,
    MessageQueued,
    MessageRetried,
    MessageSent,
    NodeDeleted,
    NodeDeliveryProtocol,
)
from cloudhub_delivery.helpers import NODE, down

SETTINGS = DeliverySettings(keepalive_timeout=30.0, ack_timeout=5.0, max_retries=4)


def core(settings: DeliverySettings = SETTINGS, now: float = 0.0) -> NodeDeliveryProtocol:
    return NodeDeliveryProtocol(NODE, settings=settings, now=now)


def drain(c: NodeDeliveryProtocol, now: float = 0.0) -> list[Message]:
    out = []
    while (m := c.next_message(now)) is not None:
        out.append(m)
    return out


def dropped(c: NodeDeliveryProtocol) -> list[str]:
    return [e.reason for e in c.events_received() if isinstance(e, MessageDropped)]


# -- classification (protocol.md 4.2 noAckRequired) ------------------------------


@pytest.mark.parametrize(
    ("msg", "lane"),
    [
        (down("update", rtype="podlist"), "noack"),
        (down("update", rtype="membership"), "noack"),
        (down("response", rtype="serviceaccounttoken", content={"status": {}}), "noack"),
        (
            Message.new(
                source="cloudhub",
                group="resource",
                operation="response",
                resource=f"node/{NODE}/k8s/ca.crt",
                content="PEM",
            ),
            "noack",
        ),
        (
            Message.new(
                source="devicecontroller",
                group="twin",
                operation="update",
                resource=f"node/{NODE}/device/default/d1/twin/cloud_updated",
                content={},
            ),
            "noack",
        ),
        (down("createvolume"), "noack"),
        (down("applicationResponse"), "noack"),
        (down("update", group="user", source="router_eventbus"), "noack"),
        (down("update", source="taskmanager"), "noack"),
        (down("update", source="nodeupgradejobcontroller"), "noack"),
        (down("response", content="OK"), "noack"),
        (down("response", content='configmaps "x" not found'), "noack"),
        (down("response", content={"ErrStatus": {"code": 404}}), "noack"),
        (down("response", rtype="node", namespace="null", name=NODE), "noack"),
        (down("insert", rtype="node", namespace="null", name=NODE), "noack"),
        (down("update", rtype="node", namespace="null", name=NODE), "ack"),
        (down("response", rtype="lease", namespace="kube-node-lease"), "noack"),
        (down("response", rtype="nodepatch", namespace="null"), "noack"),
        (down("response", rtype="podpatch"), "noack"),
        (down("update", rtype="podstatus"), "noack"),
        (down("response", rtype="certificatesigningrequest"), "noack"),
        (down("response", rtype="pod"), "noack"),
        (down("insert", rtype="pod"), "ack"),
        (down("update", rtype="pod"), "ack"),
        (down("delete", rtype="pod"), "ack"),
        (down("insert", rtype="configmap"), "ack"),
        (down("update", rtype="secret"), "ack"),
        # a configmap query reply carries the object: ack-required
        (down("response", rtype="configmap"), "ack"),
        (down("insert", rtype="device", source="devicecontroller"), "ack"),
        # the node-type exemption is edgecontroller's only
        (down("delete", rtype="node", namespace="null", source="synccontroller"), "ack"),
    ],
)
def test_classify(msg: Message, lane: str) -> None:
    assert delivery.classify(msg) == lane


def test_ack_key_is_the_object_uid_and_only_for_group_resource() -> None:
    assert delivery.ack_key(down(uid="abc")) == "abc"
    assert delivery.ack_key(down(group="twin")) is None
    assert delivery.ack_key(down(content={"metadata": {}})) is None
    assert delivery.ack_key(down(content="not json")) is None
    # Go's GetContentData accepts JSON text in a string
    assert delivery.ack_key(down(content='{"metadata": {"uid": "s"}}')) == "s"


def test_is_delete() -> None:
    assert delivery.is_delete(down("delete"))
    assert delivery.is_delete(down("update", deleting=True))
    assert not delivery.is_delete(down("update"))


def test_resource_helpers() -> None:
    assert delivery.resource_type("node/n/default/pod/p") == "pod"
    assert delivery.resource_type("default/pod/p") == "pod"
    assert delivery.resource_type("membership") == ""
    assert delivery.resource_namespace("node/n/null/node/n") == "null"
    assert delivery.resource_namespace("kube-node-lease/lease/n") == "kube-node-lease"
    assert delivery.resource_namespace("twin") == ""


def test_settings_validation_and_backoff() -> None:
    with pytest.raises(ValueError):
        DeliverySettings(ack_timeout=0)
    with pytest.raises(ValueError):
        DeliverySettings(max_retries=-1)
    with pytest.raises(ValueError):
        DeliverySettings(noack_limit=0)
    s = DeliverySettings(backoff_base=0.5, backoff_max=3.0)
    assert [s.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


# -- the ack lane -------------------------------------------------------------------


def test_one_ack_required_message_in_flight_per_node() -> None:
    c = core()
    a, b = down(uid="a", name="a"), down(uid="b", name="b")
    c.enqueue(a, now=0)
    c.enqueue(b, now=0)
    assert c.next_message(0) is a
    assert c.next_message(0) is None  # b waits for a's ack
    assert c.inflight is a
    assert not c.receive_ack("some-other-id", now=1)
    assert c.next_message(1) is None
    assert c.receive_ack(a.msg_id, now=1)
    assert c.next_message(1) is b
    events = c.events_received()
    assert [type(e) for e in events] == [
        MessageQueued,
        MessageQueued,
        MessageSent,
        MessageAcked,
        MessageSent,
    ]
    assert events[3] == MessageAcked(a)


def test_noack_messages_are_not_held_by_the_inflight_one() -> None:
    c = core()
    ack_msg = down(uid="a")
    reply = down("response", rtype="podpatch")
    c.enqueue(ack_msg, now=0)
    assert c.next_message(0) is ack_msg
    c.enqueue(reply, now=0)
    assert c.next_message(0) is reply
    assert c.inflight is ack_msg


def test_noack_goes_before_queued_ack_messages() -> None:
    c = core()
    ack_msg = down(uid="a")
    reply = down("response", content="OK")
    c.enqueue(ack_msg, now=0)
    c.enqueue(reply, now=0)
    assert drain(c) == [reply, ack_msg]


def test_an_error_response_is_not_an_ack() -> None:
    # The session feeds only op "response" to receive_ack (dispatch rule 3/4);
    # here: an ack must name the in-flight msg_id exactly.
    c = core()
    m = down()
    c.enqueue(m, now=0)
    c.next_message(0)
    assert not c.receive_ack("", now=0)
    assert c.inflight is m


def test_newer_resource_version_replaces_the_queued_one() -> None:
    c = core()
    other = down(uid="o", name="o")
    c.enqueue(other, now=0)
    assert c.next_message(0) is other  # keeps the lane busy
    v10, v11, v12 = (down(uid="x", rv=rv) for rv in ("10", "11", "12"))
    for m in (v10, v11, v12):
        c.enqueue(m, now=0)
    assert c.queue_depth() == 2
    c.receive_ack(other.msg_id, now=0)
    assert drain(c) == [v12]


def test_older_or_equal_resource_version_is_dropped() -> None:
    c = core()
    c.enqueue(down(uid="x", rv="12"), now=0)
    c.events_received()
    c.enqueue(down(uid="x", rv="12"), now=0)
    c.enqueue(down(uid="x", rv="11"), now=0)
    assert dropped(c) == [delivery.DROP_STALE, delivery.DROP_STALE]
    assert c.stats.dropped == 2


def test_a_newer_version_arriving_during_flight_is_sent_after_the_ack() -> None:
    c = core()
    v1 = down(uid="x", rv="1")
    c.enqueue(v1, now=0)
    assert c.next_message(0) is v1
    v2 = down(uid="x", rv="2")
    c.enqueue(v2, now=0)
    assert c.next_message(0) is None
    c.receive_ack(v1.msg_id, now=1)
    assert c.next_message(1) is v2
    c.receive_ack(v2.msg_id, now=2)
    assert c.queue_depth() == 0


def test_versions_not_newer_than_the_last_ack_are_dropped() -> None:
    c = core()
    v5 = down(uid="x", rv="5")
    c.enqueue(v5, now=0)
    c.next_message(0)
    c.receive_ack(v5.msg_id, now=0)
    c.events_received()
    c.enqueue(down(uid="x", rv="4"), now=0)  # e.g. a late resync
    c.enqueue(down(uid="x", rv="5"), now=0)
    assert dropped(c) == [delivery.DROP_STALE, delivery.DROP_STALE]
    v6 = down(uid="x", rv="6")
    c.enqueue(v6, now=0)
    assert c.next_message(0) is v6


def test_deletes_are_always_enqueued_and_block_later_updates() -> None:
    c = core()
    v3 = down(uid="x", rv="3")
    c.enqueue(v3, now=0)
    delete = down("delete", uid="x", rv="")  # a delete without RV still goes
    c.enqueue(delete, now=0)
    c.events_received()
    c.enqueue(down(uid="x", rv="9"), now=0)
    assert dropped(c) == [delivery.DROP_AFTER_DELETE]
    assert drain(c) == [delete]


def test_update_with_deletion_timestamp_counts_as_delete() -> None:
    c = core()
    c.enqueue(down(uid="x", rv="9"), now=0)
    graceful = down(uid="x", rv="3", deleting=True)  # RV lower, still replaces
    c.enqueue(graceful, now=0)
    assert drain(c) == [graceful]


def ack_all(c: NodeDeliveryProtocol, now: float = 0.0) -> list[Message]:
    """Send and ack one message at a time until the ack lane is empty."""
    out = []
    while (m := c.next_message(now)) is not None:
        out.append(m)
        c.receive_ack(m.msg_id, now=now)
    return out


def test_responses_with_objects_are_always_enqueued() -> None:
    c = core()
    update = down(uid="x", rv="9")
    c.enqueue(update, now=0)
    reply = down("response", uid="x", rv="5", parent="req-1")
    c.enqueue(reply, now=0, recorded_rv="100")
    # Neither replaces the other: the update is the newest state, the reply
    # is what a request on the edge waits for.
    assert ack_all(c) == [update, reply]
    assert dropped(c) == []


def test_concurrent_queries_for_one_object_each_get_their_reply() -> None:
    """Three pods that use one ConfigMap ask for it at once: three answers
    (one replacing another left a request waiting until its timeout)."""
    c = core()
    replies = [down("response", uid="x", rv="5", parent=f"req-{i}") for i in range(3)]
    for r in replies:
        c.enqueue(r, now=0)
    assert c.queue_depth() == 3
    assert [m.parent_id for m in ack_all(c)] == ["req-0", "req-1", "req-2"]


def test_an_update_does_not_replace_a_waiting_reply() -> None:
    c = core()
    reply = down("response", uid="x", rv="5", parent="req-1")
    c.enqueue(reply, now=0)
    newer = down(uid="x", rv="6")
    c.enqueue(newer, now=0)
    assert ack_all(c) == [reply, newer]


def test_a_reply_acked_late_does_not_lower_the_acked_version() -> None:
    c = core()
    reply = down("response", uid="x", rv="5", parent="req-1")
    c.enqueue(reply, now=0)
    assert c.next_message(0) == reply  # in flight, never acked: retries, then back-off
    for t in range(5, 30, 5):
        c.handle_timer(float(t))
        c.next_message(float(t))
    newer = down(uid="x", rv="9")
    c.enqueue(newer, now=30)
    assert c.next_message(30) == newer
    c.receive_ack(newer.msg_id, now=30)
    assert ack_all(c, now=1000) == [reply]  # the reply still reaches the edge
    c.events_received()
    c.enqueue(down(uid="x", rv="8"), now=1000)  # older than what the edge holds
    assert dropped(c) == [delivery.DROP_STALE]


def test_ack_required_without_resource_version_is_dropped() -> None:
    c = core()
    c.enqueue(down(rv=""), now=0)
    assert dropped(c) == [delivery.DROP_NO_RESOURCE_VERSION]


def test_ack_required_without_uid_is_dropped() -> None:
    c = core()
    c.enqueue(down(content={"metadata": {"name": "x"}}), now=0)
    c.enqueue(down("update", group="twin", rtype="device"), now=0)
    assert dropped(c) == [delivery.DROP_NO_KEY, delivery.DROP_NO_KEY]


def test_recorded_version_decides_when_nothing_is_pending() -> None:
    c = core()
    m = down(uid="x", rv="7")
    assert c.needs_record_lookup(m)
    c.enqueue(m, now=0, recorded_rv="7")
    assert dropped(c) == [delivery.DROP_ALREADY_RECORDED]
    newer = down(uid="x", rv="8")
    c.enqueue(newer, now=0, recorded_rv="7")
    assert not c.needs_record_lookup(down(uid="x", rv="9"))  # x now pending
    c.enqueue(down(uid="x", rv="9"), now=0, recorded_rv="100")  # ignored: x pending
    assert [m.resource_version for m in drain(c)] == ["9"]
    # "0" (record created, never acked) lets everything through
    fresh = down(uid="y", rv="1")
    c.enqueue(fresh, now=0, recorded_rv="0")
    assert c.queue_depth() == 2


def test_needs_record_lookup_only_for_plain_updates() -> None:
    c = core()
    assert not c.needs_record_lookup(down("delete"))
    assert not c.needs_record_lookup(down("response"))
    assert not c.needs_record_lookup(down("response", content="OK"))
    assert not c.needs_record_lookup(down(rv=""))
    assert delivery.wants_record(down("insert"))
    assert not delivery.wants_record(down("update", group="twin"))


def test_ack_store_is_bounded_by_distinct_objects() -> None:
    c = core(DeliverySettings(ack_store_limit=2))
    c.enqueue(down(uid="a", rv="1"), now=0)
    c.enqueue(down(uid="b", rv="1"), now=0)
    c.enqueue(down(uid="c", rv="1"), now=0)
    c.enqueue(down(uid="a", rv="2"), now=0)  # replacing an existing key is fine
    assert dropped(c) == [delivery.DROP_ACK_OVERFLOW]
    assert [m.resource_version for m in drain(c)] == ["2"]


# -- resends and back-off -------------------------------------------------------------


def test_resend_every_5s_four_times_then_back_off_and_retry() -> None:
    c = core(DeliverySettings(keepalive_timeout=None, backoff_base=2.0, backoff_max=8.0))
    m = down(uid="x")
    other = down(uid="y", name="y")
    c.enqueue(m, now=0)
    c.enqueue(other, now=0)
    assert c.next_message(0) is m
    c.events_received()
    assert c.get_timer() == 5.0
    for attempt in range(1, 5):
        now = 5.0 * attempt
        c.handle_timer(now - 0.001)  # early: nothing happens
        assert c.next_message(now - 0.001) is None
        c.handle_timer(now)
        assert c.next_message(now) is m  # same message, same msg_id
        assert c.events_received() == [MessageRetried(m, attempt)]
        assert c.get_timer() == now + 5.0
    c.handle_timer(25.0)
    (timed_out,) = c.events_received()
    assert timed_out == AckTimedOut(m, "x", 1, 2.0)
    assert c.inflight is None
    # the lane moves on to the next object while x backs off
    assert c.next_message(25.0) is other
    assert c.get_timer() == 27.0
    c.receive_ack(other.msg_id, now=26.0)
    assert c.next_message(26.0) is None
    c.handle_timer(27.0)
    assert c.next_message(27.0) is m
    # second failure doubles the back-off
    for t in (32.0, 37.0, 42.0, 47.0, 52.0):
        c.handle_timer(t)
        c.next_message(t)
    timeouts = [e for e in c.events_received() if isinstance(e, AckTimedOut)]
    assert timeouts == [AckTimedOut(m, "x", 2, 4.0)]
    # a late ack of a retried copy still counts and resets the failures
    c.handle_timer(56.0)
    assert c.next_message(56.0) is m
    assert c.receive_ack(m.msg_id, now=57.0)
    assert c.queue_depth() == 0
    assert c.stats.retried == 8
    assert c.stats.timed_out == 2


def test_newer_version_during_back_off_is_the_one_retried() -> None:
    c = core(DeliverySettings(keepalive_timeout=None, max_retries=0, backoff_base=1.0))
    v1 = down(uid="x", rv="1")
    c.enqueue(v1, now=0)
    c.next_message(0)
    c.handle_timer(5.0)
    v2 = down(uid="x", rv="2")
    c.enqueue(v2, now=5.5)
    assert c.next_message(5.5) is None  # still backing off
    c.handle_timer(6.0)
    assert c.next_message(6.0) is v2


def test_max_retries_zero_gives_up_after_the_first_timeout() -> None:
    c = core(DeliverySettings(keepalive_timeout=None, max_retries=0))
    m = down()
    c.enqueue(m, now=0)
    c.next_message(0)
    c.handle_timer(5.0)
    assert any(isinstance(e, AckTimedOut) for e in c.events_received())


# -- NoAck queue bound -------------------------------------------------------------------


def test_noack_queue_drops_the_oldest_when_full() -> None:
    c = core(DeliverySettings(noack_limit=2))
    replies = [down("response", content="OK") for _ in range(3)]
    for r in replies:
        c.enqueue(r, now=0)
    events = c.events_received()
    assert MessageDropped(replies[0], delivery.DROP_NOACK_OVERFLOW) in events
    assert drain(c) == replies[1:]
    assert c.stats.dropped == 1


# -- keepalive and node deletion ---------------------------------------------------------


def test_keepalive_expiry_ends_the_session() -> None:
    c = core(DeliverySettings(keepalive_timeout=30.0), now=100.0)
    assert c.get_timer() == 130.0
    c.receive_keepalive(120.0)
    assert c.get_timer() == 150.0
    c.handle_timer(149.0)
    assert not c.closed
    c.enqueue(down(), now=149.0)
    c.handle_timer(150.0)
    events = c.events_received()
    assert KeepaliveExpired(120.0) in events
    assert c.closed
    assert c.get_timer() is None
    assert c.next_message(150.0) is None
    # what was queued is reported dropped
    assert any(
        isinstance(e, MessageDropped) and e.reason == delivery.DROP_SESSION_CLOSED for e in events
    )


def test_no_timer_without_keepalive_and_nothing_in_flight() -> None:
    c = core(DeliverySettings(keepalive_timeout=None))
    assert c.get_timer() is None


def test_enqueue_after_close_is_dropped() -> None:
    c = core()
    c.close()
    c.close()  # idempotent
    c.enqueue(down(), now=0)
    c.enqueue_noack(down("response", content="OK"))
    c.handle_timer(1000.0)
    assert dropped(c) == [delivery.DROP_SESSION_CLOSED] * 2


def test_delete_of_own_node_is_not_sent_but_reported() -> None:
    c = core()
    own = down("delete", rtype="node", namespace="null", name=NODE, uid="n")
    other = down("delete", rtype="node", namespace="null", name="edge-2", uid="m")
    c.enqueue(own, now=0)
    c.enqueue(other, now=0)
    assert c.events_received()[0] == NodeDeleted(own)
    assert drain(c) == [other]
    assert delivery.is_node_deleted(NODE, own)
    assert delivery.is_node_deleted(
        NODE,
        Message.new(source="x", group="resource", operation="delete", resource=f"null/node/{NODE}"),
    )
    assert not delivery.is_node_deleted(
        NODE, down("update", rtype="node", namespace="null", name=NODE)
    )


# -- a property: whatever the interleaving, the edge sees each object's versions in order ----


def test_random_interleavings_deliver_latest_state_in_order() -> None:
    import random

    rng = random.Random(42)
    c = core(DeliverySettings(keepalive_timeout=None, max_retries=1, backoff_base=1.0))
    latest: dict[str, int] = {}
    seen: dict[str, list[int]] = {}
    now = 0.0
    rv = 0
    for _ in range(2000):
        now += rng.random()
        action = rng.random()
        if action < 0.5:
            uid = f"u{rng.randrange(20)}"
            rv += 1
            latest[uid] = rv
            c.enqueue(down(uid=uid, name=uid, rv=str(rv)), now=now)
        t = c.get_timer()
        if t is not None and t <= now:
            c.handle_timer(now)
        m = c.next_message(now)
        if m is not None:
            # the edge applies every copy it gets, but 20% of its acks are lost
            uid = delivery.ack_key(m)
            assert uid is not None
            seen.setdefault(uid, []).append(int(m.resource_version))
            if rng.random() < 0.8:
                c.receive_ack(m.msg_id, now=now)
    # quiesce: no loss anymore
    for _ in range(10000):
        now += 1.0
        t = c.get_timer()
        if t is not None and t <= now:
            c.handle_timer(now)
        m = c.next_message(now)
        if m is not None:
            uid = delivery.ack_key(m)
            assert uid is not None
            seen.setdefault(uid, []).append(int(m.resource_version))
            c.receive_ack(m.msg_id, now=now)
        if c.queue_depth() == 0:
            break
    assert c.queue_depth() == 0
    for uid, versions in seen.items():
        assert versions == sorted(versions), uid
        assert versions[-1] == latest[uid]
    assert set(seen) == set(latest)


def test_repeated_deletes_are_sent_once() -> None:
    c = core()
    first = down("delete", uid="x", rv="")
    c.enqueue(first, now=0)
    c.events_received()
    c.enqueue(down("delete", uid="x", rv=""), now=0)  # queued one is enough
    assert dropped(c) == [delivery.DROP_DUPLICATE_DELETE]
    assert c.next_message(0) is first
    c.enqueue(down("delete", uid="x", rv=""), now=0)  # in flight is enough too
    c.receive_ack(first.msg_id, now=0)
    assert c.next_message(0) is None
    c.events_received()
    # after the acked delete, nothing for that object is sent again
    c.enqueue(down("delete", uid="x", rv=""), now=0)
    c.enqueue(down("update", uid="x", rv="99"), now=0)
    assert dropped(c) == [delivery.DROP_DUPLICATE_DELETE, delivery.DROP_AFTER_DELETE]
    assert not c.needs_record_lookup(down("update", uid="x", rv="100"))


def test_graceful_deletion_update_then_delete_are_both_sent() -> None:
    c = core()
    graceful = down("update", uid="p", rv="5", deleting=True, rtype="pod")
    c.enqueue(graceful, now=0)
    assert c.next_message(0) is graceful
    final = down("delete", uid="p", rv="6", rtype="pod")
    c.enqueue(final, now=0)
    c.receive_ack(graceful.msg_id, now=0)
    assert c.next_message(0) is final


def test_unparsable_resource_versions_let_the_newest_message_through() -> None:
    c = core()
    c.enqueue(down(uid="x", rv="abc"), now=0)
    newer = down(uid="x", rv="abd")
    c.enqueue(newer, now=0, recorded_rv="zzz")
    assert drain(c) == [newer]


def test_an_ack_with_nothing_in_flight_is_ignored() -> None:
    c = core()
    assert not c.receive_ack("anything", now=0)
    assert c.stats.acked == 0


def test_content_as_json_bytes_or_text() -> None:
    assert delivery.content_object(down(content=b'{"a": 1}')) == {"a": 1}
    assert delivery.content_object(down(content="[1, 2]")) is None
    assert delivery.content_object(down(content=None)) is None


def test_per_object_memory_of_a_long_session_is_bounded() -> None:
    # Pod churn on a node whose session lives for weeks: every object gets a
    # new UID, so remembering each acked version or delete forever grows
    # without bound.
    c = core(DeliverySettings(keepalive_timeout=None, remember_limit=8))
    for i in range(50):
        update = down(uid=f"u{i}", name=f"p{i}", rv="1")
        c.enqueue(update, now=0)
        assert c.next_message(0) is update
        c.receive_ack(update.msg_id, now=0)
        delete = down("delete", uid=f"u{i}", name=f"p{i}", rv="")
        c.enqueue(delete, now=0)
        assert c.next_message(0) is delete
        c.receive_ack(delete.msg_id, now=0)
    assert c.remembered_objects() <= 2 * 8
    c.events_received()
    # the most recent ones are still remembered
    c.enqueue(down("update", uid="u49", name="p49", rv="2"), now=0)
    assert dropped(c) == [delivery.DROP_AFTER_DELETE]


def test_remember_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DeliverySettings(remember_limit=0)
