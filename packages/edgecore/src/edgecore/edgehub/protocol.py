"""The edge hub's link state machine (pure, time injected).

Mirrors KubeEdge's ``edge/pkg/edgehub/edgehub.go`` and ``process.go``
(keepalive, reconnect, routing, upstream rate limit) and
``edge/pkg/edgehub/certificate/certmanager.go`` (rotation deadline);
protocol.md 1.3 (downstream routing), 3.5 (control messages), 3.7
(keepalive, token bucket) and 5.4 (certificates). No asyncio, no sockets, no
clock: every time-dependent call takes ``now`` (seconds on any monotonic
clock; the asyncio layer passes ``loop.time()``), and the random source for
the jitter is injected.

The asyncio layer (:mod:`edgecore.edgehub.hub`) drives one
:class:`EdgeHubProtocol` for the module's life:

* inputs: ``connect_failed`` / ``connection_made`` / ``connection_lost`` for
  the link, ``message_received`` for each downstream message,
  ``send_upstream`` for each message a module sends to the cloud,
  ``write_failed`` when a write failed, ``certificate_installed`` /
  ``rotation_succeeded`` / ``rotation_failed`` for certificates;
* outputs: ``events_received()`` (frozen dataclasses of
  :mod:`edgecore.edgehub.events`), ``messages_to_send()`` (wire copies, in
  order, for the one write path) and ``state``;
* time: ``get_timer()`` / ``handle_timer(now)``; the layer keeps one timer
  armed at ``get_timer()`` and re-arms it after every call.

States::

    CONNECTING --connection_made--> CONNECTED --connection_lost--> BACKING_OFF
        ^  \\--connect_failed--> BACKING_OFF --timer--> CONNECTING     |
        \\---------------- (after a rotation: at once) ----------------/

Back-off: each delay is uniform in ``[d/2, d]``, ``d`` doubling from
``reconnect_initial_backoff`` to ``reconnect_max_backoff``; a successful
connect resets it (:class:`edgecore.edgehub.backoff.Backoff`).

Upstream buffer: at most one message waits for a token of the bucket
(``messageQPS``/``messageBurst``); policy **block**: the caller must wait until
``upstream_blocked`` is False before the next ``send_upstream``, so the
back-pressure reaches the beehive queue and nothing is dropped while the link
is up. While disconnected every upstream message is refused at once.
"""

from __future__ import annotations

import datetime as dt
import random
from enum import Enum

from beehive import constants as c
from beehive.message import Message
from edgecore.edgehub import events, routing
from edgecore.edgehub.backoff import Backoff
from edgecore.edgehub.errors import InvalidState
from edgecore.edgehub.ratelimit import TokenBucket
from edgecore.edgehub.settings import EdgeHubSettings

__all__ = ["BACKING_OFF", "CONNECTED", "CONNECTING", "EdgeHubProtocol", "State"]

#: bounds of the rotation deadline, as a fraction of the certificate lifetime
ROTATION_FRACTION = (0.7, 0.9)
#: first delay between failed rotation attempts (KubeEdge polls up to every 32 s)
ROTATION_RETRY_INITIAL = 1.0
#: the reason given to modules whose requests cannot reach the cloud
REASON_DISCONNECTED = "the cloud is disconnected"


class State(Enum):
    CONNECTING = "connecting"  # an attempt is due or under way
    CONNECTED = "connected"
    BACKING_OFF = "backing_off"  # waiting for the reconnect timer


CONNECTING = State.CONNECTING
CONNECTED = State.CONNECTED
BACKING_OFF = State.BACKING_OFF


class EdgeHubProtocol:
    """The state of the edge's link to cloudhub. See the module docstring.

    Args:
        settings: the hub settings (heartbeat, back-off bounds, rate limit,
            rotation switch and retry bound).
        rng: the random source of every jitter (reconnect back-off, rotation
            deadline, rotation retries); tests pass a seeded one.
    """

    def __init__(self, settings: EdgeHubSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not crypto)
        self._state = State.CONNECTING
        self._events: list[events.Event] = []
        self._outbox: list[Message] = []
        # originals of the upstream messages in the last batch handed out, by
        # msg id: the wire copy has beehive's sync flag cleared, but a failed
        # write must answer a synchronous request with an error
        self._batch_upstream: dict[str, Message] = {}
        self._backoff = Backoff(
            settings.reconnect_initial_backoff, settings.reconnect_max_backoff, self._rng
        )
        self._reconnect_at: float | None = None
        self._sessions = 0
        self._keepalive_at: float | None = None
        self._bucket = TokenBucket(settings.message_qps, settings.message_burst)
        self._pending_upstream: Message | None = None
        self._upstream_at: float | None = None
        # certificate: monotonic deadlines derived from the wall-clock validity
        self._rotation_at: float | None = None
        self._expires_at: float | None = None
        self._rotation_backoff = self._new_rotation_backoff()
        self._rotation_retry_at: float | None = None
        self._rotating = False  # an attempt is under way in the I/O layer
        self._reconnect_at_once = False  # the link closes for a rotation

    # -- introspection -------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state is State.CONNECTED

    @property
    def upstream_blocked(self) -> bool:
        """True while an upstream message waits for a token (do not send another)."""
        return self._pending_upstream is not None

    @property
    def has_messages_to_send(self) -> bool:
        return bool(self._outbox)

    @property
    def sessions(self) -> int:
        """How many connections were made since start."""
        return self._sessions

    def certificate_expired(self, now: float) -> bool:
        """Whether the installed certificate's NotAfter has passed."""
        return self._expires_at is not None and now >= self._expires_at

    def upstream_origin(self, msg_id: str) -> Message | None:
        """The module's message behind a wire copy of the last batch, if any."""
        return self._batch_upstream.get(msg_id)

    # -- link ------------------------------------------------------------------------

    def connect_failed(self, reason: str, *, now: float) -> None:
        """A connection attempt failed: back off.

        Raises:
            InvalidState: no attempt was due.
        """
        self._expect(State.CONNECTING, "connect_failed")
        delay = self._backoff.next()
        self._state = State.BACKING_OFF
        self._reconnect_at = now + delay
        self._events.append(events.ConnectionFailed(reason, delay))

    def connection_made(self, now: float) -> None:
        """The link is up: reset the back-off and send the first keepalive at once.

        Raises:
            InvalidState: no attempt was due.
        """
        self._expect(State.CONNECTING, "connection_made")
        self._state = State.CONNECTED
        self._backoff.reset()
        self._sessions += 1
        self._reconnect_at_once = False
        # each session starts its rotation attempts afresh (a deadline that
        # passed while disconnected is due at once)
        self._rotation_backoff = self._new_rotation_backoff()
        self._rotation_retry_at = None
        self._rotating = False
        self._outbox.append(routing.keepalive())
        self._keepalive_at = now + self.settings.heartbeat
        self._events.append(events.CloudConnected(self._sessions))

    def connection_lost(self, reason: str, *, now: float) -> None:
        """The link is gone (closed, failed, malformed frame, or closed on request).

        Unsent messages are discarded; a waiting upstream message is refused.
        Ignored when not connected (the I/O layer may report a loss twice).
        """
        if self._state is not State.CONNECTED:
            return
        # the modules' messages still queued for the link are refused, the
        # keepalive and control replies among them are simply lost
        unsent = [m for m in self._outbox if m.msg_id in self._batch_upstream]
        self._outbox.clear()
        self._keepalive_at = None
        self._rotating = False
        self._rotation_retry_at = None
        pending, self._pending_upstream = self._pending_upstream, None
        self._upstream_at = None
        if self._reconnect_at_once:
            # a rotation: reconnect with the new certificate without waiting
            self._reconnect_at_once = False
            self._state = State.CONNECTING
            self._reconnect_at = None
            delay = 0.0
        else:
            delay = self._backoff.next()
            self._state = State.BACKING_OFF
            self._reconnect_at = now + delay
        self._events.append(events.CloudDisconnected(reason, delay))
        for wire in unsent:
            self._refuse(self._batch_upstream[wire.msg_id], REASON_DISCONNECTED)
        self._batch_upstream.clear()
        if pending is not None:
            self._refuse(pending, REASON_DISCONNECTED)

    # -- downstream ------------------------------------------------------------------

    def message_received(self, msg: Message, *, now: float) -> None:
        """Route one downstream message (protocol.md 1.3, 3.5)."""
        del now  # routing does not depend on time; kept for a uniform interface
        if self._state is not State.CONNECTED:
            self._events.append(events.DownstreamDropped(msg, "received while not connected"))
            return
        # qualified on purpose: the module function is the single routing table
        decision = routing.route_downstream(msg)
        action = decision.action
        if action is routing.Action.CONTROL:
            reply = routing.control_reply(msg)
            self._outbox.append(reply)
            self._events.append(events.ControlAnswered(msg, reply))
        elif action is routing.Action.RESPOND:
            self._events.append(events.ResponseReceived(msg))
        elif action is routing.Action.GROUP:
            self._events.append(events.MessageRouted(msg, decision.target, to_group=True))
        elif action is routing.Action.MODULE:
            self._events.append(events.MessageRouted(msg, decision.target, to_group=False))
        else:
            self._events.append(events.DownstreamDropped(msg, decision.reason))

    # -- upstream --------------------------------------------------------------------

    def send_upstream(self, msg: Message, *, now: float) -> None:
        """A module's message for the cloud: send it through the token bucket,
        or refuse it at once while disconnected.

        Raises:
            InvalidState: an earlier message still waits for a token.
        """
        if self._pending_upstream is not None:
            raise InvalidState("send_upstream while a message waits for a token")
        if self._state is not State.CONNECTED:
            self._refuse(msg, REASON_DISCONNECTED)
            return
        wait = self._bucket.take(now)
        if wait > 0:
            self._pending_upstream = msg
            self._upstream_at = now + wait
            return
        self._queue_upstream(msg)

    def write_failed(self, unsent: list[Message], *, reason: str, now: float) -> None:
        """Writing ``unsent`` (the failed message first) failed: refuse the
        modules' messages among them; keepalives and control replies are lost
        with the link."""
        del now
        for wire in unsent:
            origin = self._batch_upstream.pop(wire.msg_id, None)
            if origin is not None:
                self._refuse(origin, reason)

    def _queue_upstream(self, msg: Message) -> None:
        wire = routing.to_wire(msg)
        self._outbox.append(wire)
        self._batch_upstream[wire.msg_id] = msg

    def _refuse(self, msg: Message, reason: str) -> None:
        reply = msg.response(reason, operation=c.OP_ERROR) if msg.header.sync else None
        self._events.append(events.UpstreamRefused(msg, reason, reply))

    # -- certificates ----------------------------------------------------------------

    def certificate_installed(
        self,
        *,
        not_before: dt.datetime,
        not_after: dt.datetime,
        now: float,
        wall_now: dt.datetime,
    ) -> None:
        """A client certificate is in use (loaded, bootstrapped or rotated).

        Its rotation is due at NotBefore + a jittered 70-90 % of its lifetime
        (certmanager.go). ``wall_now`` is the wall-clock time matching ``now``:
        both deadlines are kept on the monotonic clock.
        """
        fraction = self._rng.uniform(*ROTATION_FRACTION)
        deadline = not_before + (not_after - not_before) * fraction
        self._rotation_at = now + (deadline - wall_now).total_seconds()
        self._expires_at = now + (not_after - wall_now).total_seconds()
        self._events.append(events.CertificateInstalled(deadline))

    def rotation_succeeded(
        self,
        *,
        not_before: dt.datetime,
        not_after: dt.datetime,
        now: float,
        wall_now: dt.datetime,
    ) -> None:
        """The rotated certificate is on disk: use it and reconnect with it."""
        self._rotating = False
        self.certificate_installed(
            not_before=not_before, not_after=not_after, now=now, wall_now=wall_now
        )
        self._events.append(events.CertificateRotated())
        if self._state is State.CONNECTED:
            self._reconnect_at_once = True
            self._events.append(events.LinkCloseRequested("certificate rotated"))

    def rotation_failed(self, reason: str, *, now: float) -> None:
        """A rotation attempt failed: retry after a back-off (while connected)."""
        if not self._rotating:
            return  # the session ended meanwhile; the next one starts afresh
        self._rotating = False
        delay = self._rotation_backoff.next()
        self._rotation_retry_at = now + delay
        self._events.append(events.RotationFailed(reason, delay))

    def _new_rotation_backoff(self) -> Backoff:
        return Backoff(ROTATION_RETRY_INITIAL, self.settings.rotation_retry_max, self._rng)

    def _rotation_due(self) -> float | None:
        """When the next rotation attempt is due; rotation runs only while connected."""
        if (
            not self.settings.rotate_certificates
            or self._state is not State.CONNECTED
            or self._rotating
            or self._rotation_at is None
        ):
            return None
        if self._rotation_retry_at is not None:
            return self._rotation_retry_at
        return self._rotation_at

    # -- time ------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called; None: nothing is due."""
        deadlines = [
            t
            for t in (
                self._reconnect_at if self._state is State.BACKING_OFF else None,
                self._keepalive_at,
                self._upstream_at,
                self._rotation_due(),
            )
            if t is not None
        ]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Act on every deadline that has passed at ``now``."""
        if (
            self._state is State.BACKING_OFF
            and self._reconnect_at is not None
            and now >= self._reconnect_at
        ):
            self._state = State.CONNECTING
            self._reconnect_at = None
            self._events.append(events.BackoffElapsed())
        if self._keepalive_at is not None and now >= self._keepalive_at:
            self._outbox.append(routing.keepalive())
            self._keepalive_at = now + self.settings.heartbeat
        if self._upstream_at is not None and now >= self._upstream_at:
            self._release_upstream(now)
        rotation = self._rotation_due()
        if rotation is not None and now >= rotation:
            self._rotating = True
            self._rotation_retry_at = None
            self._events.append(events.RotationDeadlineReached())

    def _release_upstream(self, now: float) -> None:
        msg = self._pending_upstream
        assert msg is not None  # _upstream_at is set only with a pending message
        wait = self._bucket.take(now)
        if wait > 0:
            self._upstream_at = now + wait
            return
        self._pending_upstream = None
        self._upstream_at = None
        self._queue_upstream(msg)

    # -- outputs ---------------------------------------------------------------------

    def events_received(self) -> list[events.Event]:
        """Events since the last call, oldest first."""
        out, self._events = self._events, []
        return out

    def messages_to_send(self) -> list[Message]:
        """The messages to write now, in order (the one write path takes them all)."""
        out, self._outbox = self._outbox, []
        ids = {m.msg_id for m in out}
        self._batch_upstream = {k: v for k, v in self._batch_upstream.items() if k in ids}
        return out

    def _expect(self, state: State, call: str) -> None:
        if self._state is not state:
            raise InvalidState(f"{call} in state {self._state.value}")
