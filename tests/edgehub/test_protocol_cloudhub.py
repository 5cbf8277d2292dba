"""The edge hub core paired with cloudhub's delivery core, in memory (style rule 29).

``EdgeHubProtocol`` (edge) and ``NodeDeliveryProtocol`` plus the pure upstream
dispatch rules (cloud) exchange frames through the real codec, with one
explicit clock, and are pumped until both are quiet. The metamanager's part is
played by :meth:`Pair.pump`: every object routed to group ``meta`` is acked
with ``OK``, as KubeEdge's metamanager does.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from beehive import codec
from beehive.message import Message
from cloudcore.cloudhub import delivery, dispatch
from edgecore.edgehub import events, protocol
from edgecore.edgehub.protocol import EdgeHubProtocol
from edgecore.edgehub.settings import EdgeHubSettings
from kecommon.resources import trim_node_prefix

NODE = "edge1"


def _wire(msg: Message) -> Message:
    """What the other side reads: the message through the real codec."""
    return codec.decode(codec.encode(msg))


@dataclass
class Pair:
    """One edge and the cloud's session for it, on one clock."""

    heartbeat: float = 15.0
    keepalive_timeout: float = 30.0
    now: float = 0.0
    cloud_up: bool = True
    #: frames for which this returns True are lost on the way up
    lose_upstream: Callable[[Message], bool] = lambda m: False
    edge: EdgeHubProtocol = field(init=False)
    cloud: delivery.NodeDeliveryProtocol | None = None
    edge_events: list[tuple[float, events.Event]] = field(default_factory=list)
    cloud_events: list[tuple[float, delivery.Event]] = field(default_factory=list)
    #: what reached the edge's metamanager
    delivered: list[tuple[float, Message]] = field(default_factory=list)
    #: keepalive times as the cloud saw them
    keepalives: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        settings = EdgeHubSettings(
            node_name=NODE,
            http_server="https://cloud:10002",
            heartbeat=self.heartbeat,
            reconnect_initial_backoff=1.0,
            reconnect_max_backoff=30.0,
        )
        self.edge = EdgeHubProtocol(settings, rng=random.Random(3))

    # -- the link ---------------------------------------------------------------

    def _connect_if_due(self) -> bool:
        if self.edge.state is not protocol.CONNECTING:
            return False
        if not self.cloud_up:
            self.edge.connect_failed("(ConnectionRefusedError) refused", now=self.now)
            return True
        self.cloud = delivery.NodeDeliveryProtocol(
            NODE,
            settings=delivery.DeliverySettings(keepalive_timeout=self.keepalive_timeout),
            now=self.now,
        )
        self.edge.connection_made(self.now)
        return True

    def drop_link(self, reason: str = "connection reset") -> None:
        self.edge.connection_lost(reason, now=self.now)
        if self.cloud is not None:
            self.cloud.close()
            self.cloud = None

    # -- pumping ----------------------------------------------------------------

    def pump(self) -> None:
        """Move frames and events until neither side has anything to do."""
        while self._step():
            pass

    def _step(self) -> bool:
        moved = self._connect_if_due()
        for event in self.edge.events_received():
            moved = True
            self.edge_events.append((self.now, event))
            if isinstance(event, events.MessageRouted) and event.target == "meta":
                self.delivered.append((self.now, event.msg))
                # metamanager: store, then ack with "OK" (NewRespByMessage)
                self._upstream(event.msg.response("OK"))
        for frame in self.edge.messages_to_send():
            moved = True
            if not self.lose_upstream(frame):
                self._cloud_receives(_wire(frame))
        cloud = self.cloud
        if cloud is not None:
            while (msg := cloud.next_message(self.now)) is not None:
                moved = True
                wire = msg.copy()
                wire.route.resource = trim_node_prefix(msg.resource)
                self.edge.message_received(_wire(wire), now=self.now)
            for cloud_event in cloud.events_received():
                moved = True
                self.cloud_events.append((self.now, cloud_event))
                if isinstance(cloud_event, delivery.KeepaliveExpired):
                    self.drop_link("keepalive expired")
        return moved

    def _upstream(self, msg: Message) -> None:
        # one message at a time, as the asyncio layer does: wait for a token
        while self.edge.upstream_blocked:
            due = self.edge.get_timer()
            assert due is not None
            self.now = max(self.now, due)
            self.edge.handle_timer(self.now)
        self.edge.send_upstream(msg, now=self.now)

    def _cloud_receives(self, msg: Message) -> None:
        cloud = self.cloud
        assert cloud is not None
        action = dispatch.decide(NODE, msg)
        if isinstance(action, dispatch.Keepalive):
            self.keepalives.append(self.now)
            cloud.receive_keepalive(self.now)
        elif isinstance(action, dispatch.Ack):
            cloud.receive_ack(action.parent_msg_id, now=self.now)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing both cores' timers when they are due."""
        end = self.now + seconds
        while True:
            self.pump()
            timers = [self.edge.get_timer()]
            if self.cloud is not None:
                timers.append(self.cloud.get_timer())
            due = min((t for t in timers if t is not None), default=None)
            if due is None or due > end:
                self.now = end
                self.pump()
                return
            self.now = max(self.now, due)
            self.edge.handle_timer(self.now)
            if self.cloud is not None:
                self.cloud.handle_timer(self.now)

    # -- views ------------------------------------------------------------------

    def cloud_seen(self, kind: type[object]) -> list[tuple[float, object]]:
        return [(t, e) for t, e in self.cloud_events if isinstance(e, kind)]

    def edge_seen(self, kind: type[object]) -> list[tuple[float, object]]:
        return [(t, e) for t, e in self.edge_events if isinstance(e, kind)]


def _pod(name: str, rv: str) -> Message:
    return Message.new(
        source="edgecontroller",
        group="resource",
        operation="insert",
        resource=f"node/{NODE}/default/pod/{name}",
        content={"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": rv}},
        resource_version=rv,
    )


def test_keepalives_keep_the_cloud_session_alive() -> None:
    pair = Pair()
    pair.advance(100.0)
    assert pair.keepalives == [0.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0]
    assert pair.cloud is not None and not pair.cloud.closed
    assert pair.cloud_seen(delivery.KeepaliveExpired) == []
    assert [t for t, _ in pair.edge_seen(events.CloudConnected)] == [0.0]


def test_without_keepalives_the_cloud_ends_the_session_and_the_edge_reconnects() -> None:
    pair = Pair(lose_upstream=lambda m: m.operation == "keepalive")
    pair.advance(31.0)
    assert [t for t, _ in pair.cloud_seen(delivery.KeepaliveExpired)] == [30.0]
    ((lost_at, lost),) = pair.edge_seen(events.CloudDisconnected)
    assert lost_at == 30.0 and isinstance(lost, events.CloudDisconnected)
    assert lost.reason == "keepalive expired"
    assert [t for t, _ in pair.edge_seen(events.CloudConnected)] == [0.0, 30.0 + lost.retry_in]


def test_an_ack_required_message_is_delivered_and_acked_once() -> None:
    pair = Pair()
    pair.pump()
    assert pair.cloud is not None
    pod = _pod("nginx", "100")
    pair.cloud.enqueue(pod, now=pair.now)
    pair.advance(60.0)
    assert [(t, m.msg_id) for t, m in pair.delivered] == [(0.0, pod.msg_id)]
    # the edge got the resource without the node prefix, the rest unchanged
    assert pair.delivered[0][1].resource == "default/pod/nginx"
    assert pair.delivered[0][1].content == pod.content
    assert [e.msg.msg_id for _, e in pair.cloud_seen(delivery.MessageAcked)] == [pod.msg_id]  # type: ignore[attr-defined]
    assert pair.cloud_seen(delivery.MessageRetried) == []
    assert pair.cloud.inflight is None and pair.cloud.queue_depth() == 0


def test_a_lost_ack_is_resent_after_5s_and_then_acked() -> None:
    lost: list[Message] = []

    def lose_first_ack(msg: Message) -> bool:
        if msg.operation == "response" and not lost:
            lost.append(msg)
            return True
        return False

    pair = Pair(lose_upstream=lose_first_ack)
    pair.advance(2.0)
    assert pair.cloud is not None
    pod = _pod("nginx", "100")
    pair.cloud.enqueue(pod, now=pair.now)
    pair.advance(30.0)
    assert len(lost) == 1 and lost[0].parent_id == pod.msg_id
    # the same message (same msg_id) reaches the edge twice: at 2 s and 5 s later
    assert [(t, m.msg_id) for t, m in pair.delivered] == [(2.0, pod.msg_id), (7.0, pod.msg_id)]
    ((retried_at, retried),) = pair.cloud_seen(delivery.MessageRetried)
    assert retried_at == 7.0 and retried.attempt == 1  # type: ignore[attr-defined]
    ((acked_at, _),) = pair.cloud_seen(delivery.MessageAcked)
    assert acked_at == 7.0
    assert pair.cloud.inflight is None


def test_reconnect_backoff_grows_while_the_cloud_is_away_and_resets_after() -> None:
    pair = Pair(cloud_up=False)
    pair.advance(120.0)
    failures = pair.edge_seen(events.ConnectionFailed)
    # each attempt comes exactly its predecessor's back-off later ...
    for (before, failed), (after, _) in itertools.pairwise(failures):
        assert isinstance(failed, events.ConnectionFailed)
        assert after == before + failed.retry_in
    # ... and the back-off doubles from 1 s to the 30 s cap, jittered in [d/2, d]
    delays = [e.retry_in for _, e in failures]  # type: ignore[attr-defined]
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert len(delays) >= len(ceilings)
    for delay, ceiling in zip(delays, ceilings, strict=False):
        assert ceiling / 2 <= delay <= ceiling, delays
    # the cloud comes back: the next attempt connects, and the back-off restarts
    pair.cloud_up = True
    pair.advance(31.0)
    assert len(pair.edge_seen(events.CloudConnected)) == 1
    pair.drop_link()
    pair.pump()
    _, lost = pair.edge_seen(events.CloudDisconnected)[-1]
    assert isinstance(lost, events.CloudDisconnected) and 0.5 <= lost.retry_in <= 1.0
    pair.advance(1.0)
    assert len(pair.edge_seen(events.CloudConnected)) == 2
    assert pair.cloud is not None and not pair.cloud.closed
