"""cloudhub's session manager: the asyncio layer over the per-node delivery core.

Mirrors KubeEdge's ``cloud/pkg/cloudhub/session/{session_manager,node_session}.go``
and ``handler/message_handler.go`` (protocol.md 3.7, 3.8, 4). One
:class:`NodeSession` per connected node: it owns the connection, a pure
:class:`~cloudcore.cloudhub.delivery.NodeDeliveryProtocol`, and one writer task
that is the session's only write path. The writer

* writes whatever the core hands out (prefix ``node/<id>/`` trimmed, msg_id kept);
* sleeps until it is woken (a message queued, an ack) or the core's timer is
  due, then calls ``handle_timer`` (resends, back-off, keepalive expiry);
* carries out the core's events: records acks as ObjectSync, counts metrics,
  ends the session on keepalive expiry or when the node was deleted.

:class:`SessionManager` implements
:class:`~cloudcore.cloudhub.handler.ConnectionHandler` for the transports and
runs the downstream pump (``run(ctx)``): see :mod:`cloudcore.cloudhub.handler`
for how the cloudhub module wires it.

Messages for a node that is not connected are dropped (KubeEdge's throw-away
pool), but their ObjectSync record is still created with version ``"0"`` (by
the recorder's background writer, see :mod:`cloudcore.cloudhub.objectsync`), so
the synccontroller delivers them once the node is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from beehive.constants import (
    GROUP_EDGECONTROLLER,
    GROUP_RESOURCE,
    MOD_CLOUDHUB,
    OP_CONNECTED,
    OP_DISCONNECTED,
)
from beehive.context import Context
from beehive.message import Message, MessageHeader, MessageRoute, new_msg_id, now_ms
from cloudcore import metrics
from cloudcore.cloudhub import authorization, delivery, dispatch
from cloudcore.cloudhub.delivery import (
    AckTimedOut,
    DeliverySettings,
    Event,
    KeepaliveExpired,
    MessageAcked,
    MessageDropped,
    MessageRetried,
    MessageSent,
    NodeDeleted,
    NodeDeliveryProtocol,
    is_node_deleted,
    wants_record,
)
from cloudcore.cloudhub.handler import (
    CLOSE_GOING_AWAY,
    CLOSE_KEEPALIVE_TIMEOUT,
    CLOSE_NODE_DELETED,
    CLOSE_NODE_LIMIT,
    CLOSE_NOT_READY,
    CLOSE_REPLACED,
    CLOSE_WRITE_FAILED,
    NodeConnection,
)
from cloudcore.cloudhub.pressure import DeliveryPressure
from kecommon.resources import ResourceError, add_node_prefix, node_of, trim_node_prefix

if TYPE_CHECKING:
    from cloudcore.syncrecords import SyncRecordInformers

__all__ = [
    "NodeSession",
    "SessionManager",
    "SessionSettings",
    "SyncRecorder",
    "node_authorization_enabled",
]

log = logging.getLogger(__name__)

CLOUDHUB_MODULE = "cloudhub"

_COALESCED = frozenset(
    {
        delivery.DROP_STALE,
        delivery.DROP_DUPLICATE_DELETE,
        delivery.DROP_ALREADY_RECORDED,
        delivery.DROP_AFTER_DELETE,
    }
)


class SyncRecorder(Protocol):
    """Where acks are recorded (:class:`cloudcore.cloudhub.objectsync.ObjectSyncRecorder`)."""

    async def recorded_version(self, node: str, msg: Message) -> str | None: ...

    async def record_ack(self, node: str, msg: Message) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Session-layer settings (cloudHub section of cloudcore.yaml)."""

    #: cloudHub.keepaliveInterval: seconds without keepalive before a session
    #: ends; None disables the check
    keepalive_interval: float | None = 30.0
    #: cloudHub.nodeLimit: maximum connected nodes
    node_limit: int = 1000
    #: node admission of upstream messages (see node_authorization_enabled)
    authorization: bool = True
    delivery: DeliverySettings = field(default_factory=DeliverySettings)

    @classmethod
    def from_cloudhub_config(cls, cfg: Any) -> SessionSettings:
        """Build from the pydantic ``CloudHub`` config (``cfg.modules.cloud_hub``)."""
        keepalive = getattr(cfg, "keepalive_interval", 30)
        node_limit = getattr(cfg, "node_limit", 1000)
        return cls(
            keepalive_interval=float(keepalive) if keepalive else None,
            node_limit=int(node_limit),
            authorization=node_authorization_enabled(getattr(cfg, "authorization", None)),
        )

    def delivery_settings(self) -> DeliverySettings:
        return replace(self.delivery, keepalive_timeout=self.keepalive_interval)


def node_authorization_enabled(authz: Any) -> bool:
    """Whether message admission is on, from ``cloudHub.authorization``.

    The switch is the ``node`` authorization mode (``modes: [{node: {enable:
    ...}}]``), which defaults to enabled. The section's own ``enable``/``debug``
    keys gate KubeEdge's SubjectAccessReview authorizer, which KubeEdge ships
    disabled; they do not turn our node admission off. No ``node`` mode at all
    (an empty ``modes`` list) means off.
    """
    if authz is None:
        return True
    modes = getattr(authz, "modes", None)
    if modes is None:
        return True
    return any(bool(getattr(getattr(m, "node", None), "enable", False)) for m in modes)


def _connection_notice(node_id: str, operation: str) -> Message:
    """The internal connected/disconnected message (ConstructConnectMessage)."""
    ts = now_ms()
    return Message(
        header=MessageHeader(msg_id=new_msg_id(), timestamp=ts),
        route=MessageRoute(
            source=MOD_CLOUDHUB,
            group=GROUP_RESOURCE,
            operation=operation,
            resource=f"node/{node_id}",
        ),
        content={"event_type": operation, "timestamp": ts, "client_id": node_id},
    )


def _error_reply(node_id: str, request: Message, text: str) -> Message:
    """An ``error`` answer that the edge can match to its request.

    Source/group are set (NewErrorMessage leaves them empty) because edgehub
    drops a message without a known group instead of handing it to the waiter.
    """
    reply = request.error_response(text)
    reply.route.source = MOD_CLOUDHUB
    reply.route.group = GROUP_RESOURCE
    reply.route.resource = add_node_prefix(node_id, request.resource)
    return reply


def _response(node_id: str, request: Message, content: Any) -> Message:
    """A ``response`` cloudhub gives itself (NewRespByMessage, on the prefixed resource)."""
    reply = request.response(content)
    reply.route.source = MOD_CLOUDHUB
    reply.route.group = GROUP_RESOURCE
    reply.route.resource = add_node_prefix(node_id, request.resource)
    return reply


def _wire_copy(msg: Message) -> Message:
    out = msg.copy()
    out.route.resource = trim_node_prefix(msg.resource)
    return out


class _Wake:
    """An ``asyncio.Event`` for one waiter (the session's writer).

    Event keeps a deque of waiters, 760 bytes even when empty, for every
    connected node; this keeps at most the one future its waiter awaits.
    """

    __slots__ = ("_set", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None


class NodeSession:
    """One node's live session: connection, delivery core and writer task."""

    def __init__(
        self,
        manager: SessionManager,
        conn: NodeConnection,
        *,
        settings: DeliverySettings,
    ) -> None:
        self.node_id = conn.node_id
        self.conn = conn
        self._manager = manager
        self._clock = manager.clock
        self.core = NodeDeliveryProtocol(conn.node_id, settings=settings, now=self._clock())
        self._wake = _Wake()
        self._task: asyncio.Task[None] | None = None
        self._ended = False

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._write_loop(), name=f"cloudhub-session-{self.node_id}"
        )

    @property
    def ended(self) -> bool:
        return self._ended

    # -- inputs from the manager -------------------------------------------------

    def enqueue(self, msg: Message, recorded_rv: str | None) -> None:
        self.core.enqueue(msg, now=self._clock(), recorded_rv=recorded_rv)
        self._wake.set()

    def enqueue_noack(self, msg: Message) -> None:
        self.core.enqueue_noack(msg)
        self._wake.set()

    def keepalive(self) -> None:
        self.core.receive_keepalive(self._clock())
        self._wake.set()  # the timer moved

    def ack(self, parent_msg_id: str) -> None:
        self._manager.pressure.note()
        if self.core.receive_ack(parent_msg_id, now=self._clock()):
            self._wake.set()

    # -- the write path ---------------------------------------------------------------

    async def _write_loop(self) -> None:
        try:
            while not self._ended:
                self._wake.clear()
                now = self._clock()
                timer = self.core.get_timer()
                if timer is not None and timer <= now:
                    self.core.handle_timer(now)
                msg = self.core.next_message(now)
                await self._process_events()
                if self._ended:
                    return
                if msg is not None:
                    try:
                        await self.conn.write(_wire_copy(msg))
                    except ConnectionError as exc:
                        await self.end(CLOSE_WRITE_FAILED, f"write failed: {exc}")
                        return
                    if log.isEnabledFor(logging.DEBUG):  # no describe() per message
                        log.debug("node=%s sent %s", self.node_id, msg.describe())
                    continue
                timer = self.core.get_timer()
                timeout = None if timer is None else max(0.0, timer - self._clock())
                # asyncio.timeout, not wait_for: 3.11's wait_for can hang in its
                # cancel-and-wait when the wake-up and the timeout coincide.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("node=%s session writer failed", self.node_id)
            await self.end(CLOSE_WRITE_FAILED, "internal error")

    async def _process_events(self) -> None:
        for event in self.core.events_received():
            await self._on_event(event)

    async def _on_event(self, event: Event) -> None:
        node = self.node_id
        if isinstance(event, MessageSent):
            metrics.MESSAGES_SENT.inc()
        elif isinstance(event, MessageRetried):
            metrics.MESSAGES_RETRIED.inc()
            log.info("node=%s resend %d of msg_id=%s", node, event.attempt, event.msg.msg_id)
        elif isinstance(event, MessageAcked):
            metrics.MESSAGES_ACKED.inc()
            await self._manager.record_ack(node, event.msg)
        elif isinstance(event, MessageDropped):
            metrics.MESSAGES_DROPPED.labels(event.reason).inc()
            # Coalescing drops are the queue working as designed: debug only.
            level = logging.DEBUG if event.reason in _COALESCED else logging.INFO
            log.log(level, "node=%s dropped (%s) %s", node, event.reason, event.msg.describe())
        elif isinstance(event, AckTimedOut):
            log.warning(
                "node=%s no ack for msg_id=%s after %d failures, back-off %.3fs",
                node,
                event.msg.msg_id,
                event.failures,
                event.backoff,
            )
        elif isinstance(event, KeepaliveExpired):
            await self.end(CLOSE_KEEPALIVE_TIMEOUT, "keepalive timeout")
        elif isinstance(event, NodeDeleted):
            await self.end(CLOSE_NODE_DELETED, "node deleted")

    # -- ending ---------------------------------------------------------------------------

    async def end(self, code: int, reason: str) -> None:
        """End the session once: stop the core, tell the controllers, close."""
        if self._ended:
            return
        self._ended = True
        self.core.close()
        self._wake.set()
        log.info("node=%s session ended: %s", self.node_id, reason)
        await self._process_events()
        await self._manager.session_ended(self, reason)
        with contextlib.suppress(Exception):
            await self.conn.close(code, reason)
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class SessionManager:
    """One session per node; the ConnectionHandler of the transports."""

    def __init__(
        self,
        settings: SessionSettings | None = None,
        *,
        recorder: SyncRecorder | None = None,
        node_index: authorization.NodeObjectIndex | None = None,
        kube: Any = None,
        records: SyncRecordInformers | None = None,
        cluster_ca: bytes | str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            settings: session settings (defaults as KubeEdge's, authorization on).
            recorder: where acks are recorded; built from ``kube`` if omitted.
            node_index: admission lookups; built from ``kube`` if omitted.
            kube: a ``kubeclient.KubeClient``; None means no ObjectSync records and,
                with authorization on, every lookup-based message is refused.
            records: the process's shared ``SyncRecordInformers`` for the default
                recorder (one is made for it if omitted).
            cluster_ca: the cluster CA (PEM text or bytes) sent for ``k8s/ca.crt``.
            clock: monotonic seconds; injectable for tests.
        """
        self.settings = settings or SessionSettings()
        self.clock = clock
        #: delivery activity, so that the record writer yields to it in bursts
        #: (real time, not ``clock``: the writer sleeps on it)
        self.pressure = DeliveryPressure()
        if kube is not None and recorder is None:
            from cloudcore.cloudhub.objectsync import ObjectSyncRecorder

            recorder = ObjectSyncRecorder(kube, records=records, pressure=self.pressure)
        else:
            writer = getattr(recorder, "writer", None)
            if writer is not None and getattr(writer, "pressure", False) is None:
                writer.pressure = self.pressure
        if kube is not None and node_index is None:
            from cloudcore.cloudhub.nodeindex import KubeNodeObjectIndex

            node_index = KubeNodeObjectIndex(kube)
        self._recorder = recorder
        self._index = node_index
        if isinstance(cluster_ca, bytes):
            cluster_ca = cluster_ca.decode("ascii", errors="replace")
        self._cluster_ca = cluster_ca
        self._sessions: dict[str, NodeSession] = {}
        self._ctx: Context | None = None
        self._ready = asyncio.Event()
        self._closed = False
        metrics.NODE_QUEUE_DEPTH.add_source(self)
        if not self.settings.authorization:
            log.warning(
                "cloudHub.authorization is disabled: edge nodes may read and write any "
                "object through cloudcore (KubeEdge compatibility mode)"
            )

    # -- introspection ------------------------------------------------------------------

    @property
    def connected_nodes(self) -> list[str]:
        return sorted(self._sessions)

    def queue_depths(self) -> list[tuple[str, int]]:
        """(node, messages waiting) per connected node: the queue-depth metric."""
        return [(node, s.core.queue_depth()) for node, s in self._sessions.items()]

    def session(self, node_id: str) -> NodeSession | None:
        return self._sessions.get(node_id)

    # -- ConnectionHandler ---------------------------------------------------------------

    async def on_connect(self, conn: NodeConnection) -> bool:
        node = conn.node_id
        if self._ctx is None or self._closed:
            await conn.close(CLOSE_NOT_READY, "cloudhub is not ready")
            return False
        old = self._sessions.get(node)
        if old is None and len(self._sessions) >= self.settings.node_limit:
            reason = f"node limit of {self.settings.node_limit} reached"
            log.warning("node=%s refused: %s", node, reason)
            await conn.close(CLOSE_NODE_LIMIT, reason)
            return False
        while old is not None:
            await old.end(CLOSE_REPLACED, "replaced by a new connection")
            current = self._sessions.get(node)
            if current is old:
                break  # another on_connect is still ending it: take its place
            # Another connection of this node was installed while we waited:
            # replace it too, or it would be overwritten below and orphaned
            # (its writer and connection left with nobody to end them).
            old = current
        session = NodeSession(self, conn, settings=self.settings.delivery_settings())
        self._sessions[node] = session
        metrics.CONNECTED_NODES.set(len(self._sessions))
        session.start()
        log.info("node=%s connected over %s", node, conn.transport)
        await self._notify(node, OP_CONNECTED)
        return True

    async def on_disconnect(self, conn: NodeConnection, reason: str) -> None:
        session = self._sessions.get(conn.node_id)
        if session is None or session.conn is not conn:
            return  # an old connection we already replaced or ended
        await session.end(CLOSE_GOING_AWAY, reason or "connection closed")

    async def on_message(self, conn: NodeConnection, msg: Message) -> None:
        node = conn.node_id
        session = self._sessions.get(node)
        if session is None or session.conn is not conn or session.ended:
            log.debug("node=%s message on a stale connection dropped: %s", node, msg.describe())
            return
        metrics.UPSTREAM_MESSAGES.labels(msg.operation or "-").inc()
        if not msg.operation:
            # edgecore writes an all-empty message (no id, no route) as it shuts
            # its connection down (see the captures); there is nothing to answer.
            log.debug("node=%s message without operation ignored: %s", node, msg.describe())
            return
        if self.settings.authorization and not await self._admit(session, msg):
            return
        action = dispatch.decide(node, msg)
        if isinstance(action, dispatch.Keepalive):
            session.keepalive()
        elif isinstance(action, dispatch.Ack):
            session.ack(action.parent_msg_id)
        elif isinstance(action, dispatch.LogError):
            log.warning(
                "node=%s reported an error: %s content=%r", node, msg.describe(), msg.content
            )
        elif isinstance(action, dispatch.SendToModule):
            await self._to_module(node, action.module, action.msg)
        elif isinstance(action, dispatch.Publish):
            await self._to_group(node, action.group, action.msg)
        elif isinstance(action, dispatch.AnswerClusterCA):
            if self._cluster_ca is None:
                session.enqueue_noack(_error_reply(node, msg, "cluster CA is not available"))
            else:
                session.enqueue_noack(dispatch.ca_response(node, msg, self._cluster_ca))

    async def _admit(self, session: NodeSession, msg: Message) -> bool:
        node = session.node_id
        decision: authorization.Decision | authorization.Absent = (
            authorization.admission_check(node, msg)
        )
        if isinstance(decision, authorization.Lookup):
            if self._index is None:
                decision = authorization.Denied(
                    authorization.REASON_LOOKUP_FAILED, "no object index to check ownership"
                )
            else:
                decision = await authorization.resolve(node, decision, self._index)
        if isinstance(decision, authorization.Absent):
            # Nothing to authorize or to do: answer as the API server would.
            log.info(
                "node=%s msg_id=%s %s %s/%s: not found, answered NotFound",
                node,
                msg.msg_id,
                msg.operation,
                decision.namespace,
                decision.name,
            )
            session.enqueue_noack(
                _response(node, msg, authorization.not_found_content(decision))
            )
            return False
        if isinstance(decision, authorization.Denied):
            metrics.UNAUTHORIZED_MESSAGES.labels(decision.reason).inc()
            log.warning(
                "node=%s msg_id=%s refused by node authorization: %s",
                node,
                msg.msg_id,
                decision.detail,
            )
            session.enqueue_noack(_error_reply(node, msg, f"node authorization: {decision.detail}"))
            return False
        return True

    async def _to_module(self, node: str, module: str, msg: Message) -> None:
        ctx = self._ctx
        if ctx is None or module not in ctx.modules():
            log.info("node=%s no %s module, dropped %s", node, module, msg.describe())
            return
        await ctx.send(module, msg)

    async def _to_group(self, node: str, group: str, msg: Message) -> None:
        ctx = self._ctx
        if ctx is None or not ctx.group_members(group):
            log.info("node=%s no %s group, dropped %s", node, group, msg.describe())
            return
        await ctx.send_to_group(group, msg)

    async def _notify(self, node: str, operation: str) -> None:
        ctx = self._ctx
        if ctx is None or ctx.closed or not ctx.group_members(GROUP_EDGECONTROLLER):
            return
        try:
            await ctx.send_to_group(GROUP_EDGECONTROLLER, _connection_notice(node, operation))
        except Exception as exc:
            log.warning("node=%s cannot publish %s: %s", node, operation, exc)

    # -- called by sessions ------------------------------------------------------------------

    async def session_ended(self, session: NodeSession, reason: str) -> None:
        if self._sessions.get(session.node_id) is session:
            del self._sessions[session.node_id]
            metrics.CONNECTED_NODES.set(len(self._sessions))
            await self._notify(session.node_id, OP_DISCONNECTED)

    async def record_ack(self, node: str, msg: Message) -> None:
        if self._recorder is None:
            return
        try:
            await self._recorder.record_ack(node, msg)
        except Exception as exc:
            log.warning("node=%s cannot record ack of msg_id=%s: %s", node, msg.msg_id, exc)

    async def _recorded_version(self, node: str, msg: Message) -> str | None:
        if self._recorder is None:
            return None
        try:
            return await self._recorder.recorded_version(node, msg)
        except Exception as exc:
            log.warning("node=%s cannot read ObjectSync for %s: %s", node, msg.describe(), exc)
            return None

    # -- downstream --------------------------------------------------------------------------

    async def run(self, ctx: Context) -> None:
        """The downstream pump: route every message sent to module ``cloudhub``.

        Runs until cancelled. ``ctx`` must have the module ``cloudhub``
        registered (the cloudhub beehive module does that).
        """
        ctx.add_module(CLOUDHUB_MODULE, CLOUDHUB_MODULE)
        self._ctx = ctx
        self._ready.set()
        try:
            while True:
                msg = await ctx.receive(CLOUDHUB_MODULE)
                try:
                    await self.route_downstream(msg)
                except Exception:
                    log.exception("cannot route %s", msg.describe())
        finally:
            self._ready.clear()
            self._ctx = None

    async def wait_ready(self) -> None:
        """Wait until ``run`` has started (connections are accepted from then on)."""
        await self._ready.wait()

    async def route_downstream(self, msg: Message) -> None:
        """Hand one downstream message to its node's session."""
        self.pressure.note()
        try:
            node = node_of(msg.resource)
        except ResourceError:
            log.warning("downstream message without node/<id>/ prefix dropped: %s", msg.describe())
            metrics.MESSAGES_DROPPED.labels("no_node").inc()
            return
        session = self._sessions.get(node)
        if is_node_deleted(node, msg):
            if session is not None:
                await session.end(CLOSE_NODE_DELETED, "node deleted")
            return
        recorded: str | None = None
        needs = session.core.needs_record_lookup(msg) if session else wants_record(msg)
        if needs:
            # For an offline node this still creates the record with "0", so
            # the synccontroller sends the object once the node is back.
            recorded = await self._recorded_version(node, msg)
            session = self._sessions.get(node)  # it may have changed meanwhile
        if session is None or session.ended:
            metrics.MESSAGES_DROPPED.labels("node_offline").inc()
            log.debug("node=%s offline, dropped %s", node, msg.describe())
            return
        session.enqueue(msg, recorded)

    async def close(self) -> None:
        """End every session (code 1001), then write the ObjectSync records still
        queued (so a restart does not resend what was acked); idempotent."""
        self._closed = True
        for session in list(self._sessions.values()):
            await session.end(CLOSE_GOING_AWAY, "cloudcore shutting down")
        close = getattr(self._recorder, "close", None)
        if close is not None:
            try:
                await close()
            except Exception:
                log.exception("closing the ObjectSync recorder failed")
