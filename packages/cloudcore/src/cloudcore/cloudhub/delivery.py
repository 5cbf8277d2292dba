"""Per-node reliable delivery: the pure state machine behind one edge session.

Mirrors KubeEdge's ``cloud/pkg/cloudhub/common/message_pool.go``,
``dispatcher/message_dispatcher.go`` (``noAckRequired``, ``enqueueAckMessage``)
and ``session/node_session.go`` (``sendMessageWithRetry``, ``KeepAliveCheck``);
protocol.md sections 3.7, 3.8 and 4.2. Pure: no asyncio, no clock, no I/O.
Every time-dependent call takes ``now`` (seconds, any monotonic origin).

The I/O layer (:mod:`cloudcore.cloudhub.sessions`) drives one
:class:`NodeDeliveryProtocol` per connected node:

* ``enqueue(msg, now=...)`` for every downstream message routed to the node;
* ``receive_keepalive(now)`` / ``receive_ack(parent_msg_id, now)`` for upstream
  ``keepalive`` and ``response`` messages;
* ``next_message(now)`` until it returns None, writing each message (the
  caller trims the ``node/<id>/`` prefix; the msg_id is kept, the ack matches
  on it);
* ``get_timer()`` / ``handle_timer(now)``: one timer per session;
* ``events_received()`` to learn what happened (frozen dataclasses below).

Two lanes, as KubeEdge's NodeMessagePool:

* **NoAck**: fire and forget, FIFO. Bounded by ``noack_limit``; policy **drop
  the oldest** (the newest reply or membership update is the more useful one;
  the edge retries its own requests), each drop reported as
  :class:`MessageDropped` and counted.
* **Ack**: coalesced by the UID of the object in ``content``; the newest
  resourceVersion replaces an older one still waiting, so the queue never holds
  more than one message per object. Strictly serial per node: one message is in
  flight until its ack (an upstream ``response`` whose ``parent_msg_id`` is the
  msg_id we sent) or until it timed out: resent every ``ack_timeout`` seconds,
  ``max_retries`` times, then the key goes back to the queue after a per-key
  exponential back-off (KubeEdge's workqueue DefaultControllerRateLimiter,
  item part: ``backoff_base * 2**failures`` capped at ``backoff_max``). The
  store is bounded by ``ack_store_limit`` distinct objects; a new object beyond
  it is dropped and counted (the synccontroller resends it later from its
  ObjectSync record).

A reply to one of the edge's own queries (operation ``response`` with an
object) has its own slot in the ack lane, keyed by the object's UID and the
request's msg_id: someone on the edge waits for exactly that reply, so it never
replaces, and is never replaced by, another reply or an update of the same
object (three pods asking for one ConfigMap at once get three answers).

Beyond KubeEdge, the machine remembers the last acked resourceVersion of each
object (and which objects it deleted) and drops anything not newer. That closes
a race KubeEdge leaves open (an older update arriving just after the newer one
was acked) and is what guarantees the edge applies every object's versions in
increasing order. The memory is bounded by ``remember_limit`` objects per kind
(versions, deletes), policy **drop the least recently acked**: a forgotten
object falls back to its ObjectSync record, as at the start of a session.
"""

from __future__ import annotations

import heapq
import json
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from beehive.constants import (
    CONTENT_OK,
    GROUP_RESOURCE,
    GROUP_USER,
    MOD_EDGECONTROLLER,
    NULL_NAMESPACE,
    OP_DELETE,
    OP_RESPONSE,
    OP_UPDATE,
    RT_NODE,
)
from beehive.message import Message
from kecommon.resources import compare_resource_versions

__all__ = [
    "AckTimedOut",
    "DeliverySettings",
    "Event",
    "KeepaliveExpired",
    "Lane",
    "MessageAcked",
    "MessageDropped",
    "MessageQueued",
    "MessageRetried",
    "MessageSent",
    "NodeDeleted",
    "NodeDeliveryProtocol",
    "ack_key",
    "classify",
    "content_object",
    "is_delete",
    "is_node_deleted",
    "resource_type",
    "wants_record",
]

Lane = Literal["noack", "ack"]
_V = TypeVar("_V")

# Substrings of a resource that make a message NoAck (noAckRequired).
_NOACK_RESOURCE_PARTS: Final = (
    "podlist",
    "membership",
    "twin/cloud_updated",
    "serviceaccounttoken",
    "k8s/ca.crt",
)
_NOACK_OPERATIONS: Final = frozenset(
    {
        "createvolume",
        "deletevolume",
        "controllerpublishvolume",
        "controllerunpublishvolume",
        "applicationResponse",
    }
)
_NOACK_SOURCES: Final = frozenset({"taskmanager", "nodeupgradejobcontroller"})
# Types that edgecontroller sends without an ack (replies to edge requests).
_NOACK_EDGECONTROLLER_TYPES: Final = frozenset(
    {"lease", "nodepatch", "podpatch", "podstatus", "certificatesigningrequest"}
)

# Why a message was dropped; also the label values of the dropped metric.
DROP_NOACK_OVERFLOW: Final = "noack_queue_full"
DROP_ACK_OVERFLOW: Final = "ack_queue_full"
DROP_NO_RESOURCE_VERSION: Final = "no_resource_version"
DROP_NO_KEY: Final = "no_object_uid"
DROP_STALE: Final = "stale_resource_version"
DROP_AFTER_DELETE: Final = "object_being_deleted"
DROP_ALREADY_RECORDED: Final = "already_delivered"
DROP_SESSION_CLOSED: Final = "session_closed"
DROP_DUPLICATE_DELETE: Final = "duplicate_delete"


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Tunables of one node's delivery; every timeout may be None (disabled)."""

    #: seconds without an upstream keepalive before the session ends
    #: (cloudHub.keepaliveInterval); None disables the check.
    keepalive_timeout: float | None = 30.0
    #: seconds between resends of an unacked message (KubeEdge: 5 s)
    ack_timeout: float = 5.0
    #: resends before the message goes to back-off (KubeEdge: 4)
    max_retries: int = 4
    #: per-key exponential back-off after the retries are used up
    backoff_base: float = 0.005
    backoff_max: float = 1000.0
    #: bound of the NoAck FIFO (policy: drop the oldest)
    noack_limit: int = 1024
    #: bound of distinct objects waiting in the ack lane (policy: drop new keys)
    ack_store_limit: int = 100_000
    #: bound of acked versions and of acked deletes remembered per session
    #: (policy: forget the least recently acked; pod churn would grow it forever)
    remember_limit: int = 100_000

    def __post_init__(self) -> None:
        if self.ack_timeout <= 0:
            raise ValueError("ack_timeout must be positive")
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if self.noack_limit <= 0 or self.ack_store_limit <= 0 or self.remember_limit <= 0:
            raise ValueError("queue limits must be positive")

    def backoff(self, failures: int) -> float:
        """Delay before a key that failed ``failures`` times is retried."""
        return float(min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1)))


# -- events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageQueued:
    msg: Message
    lane: Lane


@dataclass(frozen=True, slots=True)
class MessageDropped:
    msg: Message
    reason: str


@dataclass(frozen=True, slots=True)
class MessageSent:
    """A message left through ``next_message`` for the first time."""

    msg: Message
    lane: Lane


@dataclass(frozen=True, slots=True)
class MessageRetried:
    """An unacked message is due to be written again (same msg_id)."""

    msg: Message
    attempt: int  # 1 for the first resend


@dataclass(frozen=True, slots=True)
class MessageAcked:
    msg: Message


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """All resends went unanswered; the key waits ``backoff`` seconds."""

    msg: Message
    key: str
    failures: int
    backoff: float


@dataclass(frozen=True, slots=True)
class KeepaliveExpired:
    """No keepalive for ``keepalive_timeout`` seconds: end the session."""

    last_seen: float


@dataclass(frozen=True, slots=True)
class NodeDeleted:
    """A ``delete`` of this node's own Node: end the session, do not send it."""

    msg: Message


Event = (
    MessageQueued
    | MessageDropped
    | MessageSent
    | MessageRetried
    | MessageAcked
    | AckTimedOut
    | KeepaliveExpired
    | NodeDeleted
)


# -- classification (pure functions, also used by the dispatcher) ---------------


def content_object(msg: Message) -> dict[str, Any] | None:
    """The content as a JSON object, decoding a JSON string the way Go's
    GetContentData does; None if it is not an object."""
    content = msg.content
    if isinstance(content, str | bytes):
        try:
            content = json.loads(content)
        except ValueError:
            return None
    return content if isinstance(content, dict) else None


def _metadata(msg: Message) -> dict[str, Any]:
    obj = content_object(msg)
    meta = obj.get("metadata") if obj else None
    return meta if isinstance(meta, dict) else {}


def resource_type(resource: str) -> str:
    """The type segment of ``node/<n>/<ns>/<type>/...`` or ``<ns>/<type>/...``."""
    parts = resource.split("/")
    if parts and parts[0] == "node" and len(parts) >= 4:
        return parts[3]
    return parts[1] if len(parts) >= 2 else ""


def resource_namespace(resource: str) -> str:
    parts = resource.split("/")
    if parts and parts[0] == "node" and len(parts) >= 4:
        return parts[2]
    return parts[0] if len(parts) >= 2 else ""


def _is_error_content(content: Any) -> bool:
    # KubeEdge checks ``content.(error)``. A Go error crosses our Python
    # controllers either as a serialized StatusError ({"ErrStatus": ...}) or as
    # a plain error text; "OK" is the success reply.
    if isinstance(content, str):
        return True
    return isinstance(content, dict) and "ErrStatus" in content and "Object" not in content


def classify(msg: Message) -> Lane:
    """NoAck or Ack, exactly by KubeEdge's noAckRequired (protocol.md 4.2)."""
    resource = msg.resource
    if any(part in resource for part in _NOACK_RESOURCE_PARTS):
        return "noack"
    op = msg.operation
    if op in _NOACK_OPERATIONS:
        return "noack"
    if msg.group == GROUP_USER or msg.source in _NOACK_SOURCES:
        return "noack"
    if op == OP_RESPONSE and (msg.content == CONTENT_OK or _is_error_content(msg.content)):
        return "noack"
    if msg.source == MOD_EDGECONTROLLER:
        rtype = resource_type(resource)
        if rtype == RT_NODE and op != OP_UPDATE:
            return "noack"
        if rtype in _NOACK_EDGECONTROLLER_TYPES:
            return "noack"
        if rtype == "pod" and op == OP_RESPONSE:
            return "noack"
    return "ack"


def ack_key(msg: Message) -> str | None:
    """The ack-lane key: the UID of the object in content (AckMessageKeyFunc).

    Only group ``resource`` messages have one; None means "cannot be queued".
    """
    if msg.group != GROUP_RESOURCE:
        return None
    uid = _metadata(msg).get("uid")
    return uid if isinstance(uid, str) and uid else None


def is_delete(msg: Message) -> bool:
    """op ``delete`` or content with metadata.deletionTimestamp (isDeleteMessage)."""
    return msg.operation == OP_DELETE or bool(_metadata(msg).get("deletionTimestamp"))


def is_node_deleted(node_id: str, msg: Message) -> bool:
    """A delete of ``node/<id>/null/node/<id>``: the node itself was deleted."""
    return msg.operation == OP_DELETE and msg.resource in (
        f"node/{node_id}/{NULL_NAMESPACE}/{RT_NODE}/{node_id}",
        f"{NULL_NAMESPACE}/{RT_NODE}/{node_id}",
    )


def wants_record(msg: Message) -> bool:
    """Whether the ObjectSync record of ``msg``'s object decides if it is sent:
    an ack-required, non-delete, non-reply message with a resourceVersion and
    an object UID (the last branch of enqueueAckMessage)."""
    return (
        bool(msg.resource_version)
        and msg.operation != OP_RESPONSE
        and classify(msg) == "ack"
        and not is_delete(msg)
        and ack_key(msg) is not None
    )


def _not_newer(new_rv: str, old_rv: str) -> bool:
    cmp = compare_resource_versions(new_rv, old_rv)
    # Unparsable versions are not ours to judge: let them through (newest wins).
    return cmp is not None and cmp <= 0


# -- the state machine ------------------------------------------------------------


@dataclass(slots=True)
class _InFlight:
    key: str
    msg: Message
    deadline: float
    resends: int = 0
    resend_due: bool = False


@dataclass(slots=True)
class _Stats:
    queued: int = 0
    sent: int = 0
    retried: int = 0
    acked: int = 0
    dropped: int = 0
    timed_out: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)


class NodeDeliveryProtocol:
    """Delivery and liveness state of one node's session. See the module doc."""

    def __init__(self, node_id: str, *, settings: DeliverySettings, now: float) -> None:
        self.node_id = node_id
        self.settings = settings
        self.stats = _Stats()
        self._events: list[Event] = []
        # Created on the first NoAck message: an empty deque is 760 bytes, and most
        # of thousands of idle nodes never get one (docs/performance.md).
        self._noack: deque[Message] | None = None
        # The ack store: latest message per object UID; the order of the dict
        # is not the send order, _ready is.
        self._store: dict[str, Message] = {}
        self._ready: OrderedDict[str, None] = OrderedDict()
        self._delayed: list[tuple[float, str]] = []  # heap of (due, key)
        self._delayed_keys: set[str] = set()
        self._failures: dict[str, int] = {}
        # Both bounded by settings.remember_limit, least recently acked first out.
        self._acked_rv: OrderedDict[str, str] = OrderedDict()
        self._deleted: OrderedDict[str, None] = OrderedDict()  # keys whose op-delete was acked
        self._inflight: _InFlight | None = None
        self._last_keepalive = now
        self._closed = False

    # -- inputs -------------------------------------------------------------------

    def enqueue(self, msg: Message, *, now: float, recorded_rv: str | None = None) -> None:
        """Queue a downstream message for this node.

        ``recorded_rv`` is the resourceVersion of the object's ObjectSync record
        (None: no record or unknown). It is consulted only when the object has
        nothing waiting in this session, as KubeEdge does.
        """
        if self._closed:
            self._drop(msg, DROP_SESSION_CLOSED)
            return
        if is_node_deleted(self.node_id, msg):
            self._events.append(NodeDeleted(msg))
            return
        if classify(msg) == "noack":
            self.enqueue_noack(msg)
        else:
            self._enqueue_ack(msg, recorded_rv)

    def enqueue_noack(self, msg: Message) -> None:
        """Queue a fire-and-forget message (cloudhub's own replies use this)."""
        if self._closed:
            self._drop(msg, DROP_SESSION_CLOSED)
            return
        noack = self._noack
        if noack is None:
            noack = self._noack = deque()
        if len(noack) >= self.settings.noack_limit:
            self._drop(noack.popleft(), DROP_NOACK_OVERFLOW)
        noack.append(msg)
        self.stats.queued += 1
        self._events.append(MessageQueued(msg, "noack"))

    def needs_record_lookup(self, msg: Message) -> bool:
        """Whether ``enqueue`` would consult ``recorded_rv`` for ``msg``.

        The I/O layer asks before fetching the ObjectSync record, so it only
        pays for the lookup when the answer matters.
        """
        if not wants_record(msg):
            return False
        key = ack_key(msg)
        return (
            key is not None
            and key not in self._store
            and key not in self._acked_rv
            and key not in self._deleted
        )

    def _enqueue_ack(self, msg: Message, recorded_rv: str | None) -> None:
        deleting = is_delete(msg)
        if not msg.resource_version and not deleting:
            self._drop(msg, DROP_NO_RESOURCE_VERSION)
            return
        key = ack_key(msg)
        if key is None:
            self._drop(msg, DROP_NO_KEY)
            return
        stored = self._store.get(key)
        if msg.operation == OP_DELETE and (
            key in self._deleted or (stored is not None and stored.operation == OP_DELETE)
        ):
            # The same delete again (the synccontroller repeats it until the
            # ack removes its record): one is enough.
            self._drop(msg, DROP_DUPLICATE_DELETE)
            return
        if msg.operation == OP_RESPONSE:
            # The edge asked for this reply and waits for it by msg_id: always
            # sent, in a slot of its own (see the module doc).
            self._put(_reply_slot(key, msg), msg)
            return
        if deleting:
            # A delete must never be lost.
            self._put(key, msg)
            return
        if key in self._deleted:
            self._drop(msg, DROP_AFTER_DELETE)
            return
        if stored is not None:
            if is_delete(stored):
                self._drop(msg, DROP_AFTER_DELETE)
                return
            if _not_newer(msg.resource_version, stored.resource_version):
                self._drop(msg, DROP_STALE)
                return
        else:
            acked = self._acked_rv.get(key)
            if acked is not None and _not_newer(msg.resource_version, acked):
                self._drop(msg, DROP_STALE)
                return
            if (
                acked is None
                and recorded_rv is not None
                and _not_newer(msg.resource_version, recorded_rv)
            ):
                self._drop(msg, DROP_ALREADY_RECORDED)
                return
        self._put(key, msg)

    def _put(self, key: str, msg: Message) -> None:
        if key not in self._store and len(self._store) >= self.settings.ack_store_limit:
            self._drop(msg, DROP_ACK_OVERFLOW)
            return
        self._store[key] = msg
        inflight_key = self._inflight.key if self._inflight else None
        if key not in self._delayed_keys and key != inflight_key:
            self._ready[key] = None
        self.stats.queued += 1
        self._events.append(MessageQueued(msg, "ack"))

    def receive_keepalive(self, now: float) -> None:
        self._last_keepalive = now

    def receive_ack(self, parent_msg_id: str, *, now: float) -> bool:
        """An upstream ``response``; True if it acked the message in flight.

        Responses that ack nothing (the edge also acks NoAck replies) are
        normal and ignored.
        """
        inflight = self._inflight
        if inflight is None or not parent_msg_id or parent_msg_id != inflight.msg.msg_id:
            return False
        self._inflight = None
        key, msg = inflight.key, inflight.msg
        self._failures.pop(key, None)
        obj_key = _object_key(key)  # a reply's slot is not its object's key
        if msg.operation == OP_DELETE:
            # The object is gone on the edge: UIDs are never reused, so
            # anything later for this key is a repeat or a stale update.
            self._acked_rv.pop(obj_key, None)
            _remember(self._deleted, obj_key, None, self.settings.remember_limit)
        elif msg.resource_version and obj_key not in self._deleted:
            known = self._acked_rv.get(obj_key)
            # A reply acked after a newer update (it waited in back-off) must
            # not lower what the edge is known to hold.
            if known is None or not _not_newer(msg.resource_version, known):
                _remember(
                    self._acked_rv, obj_key, msg.resource_version, self.settings.remember_limit
                )
        if self._store.get(key) is msg:
            del self._store[key]
        elif key in self._store:
            # A newer version arrived while this one was in flight.
            self._ready[key] = None
        self.stats.acked += 1
        self._events.append(MessageAcked(msg))
        return True

    def close(self) -> None:
        """The session ended: nothing more is sent; queued messages are dropped."""
        if self._closed:
            return
        self._closed = True
        for msg in self._noack or ():
            self._drop(msg, DROP_SESSION_CLOSED)
        for msg in self._store.values():
            self._drop(msg, DROP_SESSION_CLOSED)
        self._noack = None
        self._store.clear()
        self._ready.clear()
        self._delayed.clear()
        self._delayed_keys.clear()
        self._inflight = None

    # -- outputs --------------------------------------------------------------------

    def next_message(self, now: float) -> Message | None:
        """The next message to write, or None.

        NoAck messages go first, then a due resend, then the next object of
        the ack lane if nothing is in flight.
        """
        if self._closed:
            return None
        if self._noack:
            msg = self._noack.popleft()
            if not self._noack:
                self._noack = None  # an emptied deque keeps its 760 bytes
            self.stats.sent += 1
            self._events.append(MessageSent(msg, "noack"))
            return msg
        inflight = self._inflight
        if inflight is not None and inflight.resend_due:
            # A resend reuses the msg_id, so a late ack of any copy counts.
            inflight.resend_due = False
            return inflight.msg
        self._promote_delayed(now)
        if inflight is not None or not self._ready:
            return None
        key, _ = self._ready.popitem(last=False)
        msg = self._store[key]
        self._inflight = _InFlight(key=key, msg=msg, deadline=now + self.settings.ack_timeout)
        self.stats.sent += 1
        self._events.append(MessageSent(msg, "ack"))
        return msg

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called; None: no deadline."""
        if self._closed:
            return None
        deadlines: list[float] = []
        if self.settings.keepalive_timeout is not None:
            deadlines.append(self._last_keepalive + self.settings.keepalive_timeout)
        if self._inflight is not None:
            deadlines.append(self._inflight.deadline)
        if self._delayed:
            deadlines.append(self._delayed[0][0])
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        if self._closed:
            return
        timeout = self.settings.keepalive_timeout
        if timeout is not None and now >= self._last_keepalive + timeout:
            self._events.append(KeepaliveExpired(self._last_keepalive))
            self.close()
            return
        inflight = self._inflight
        if inflight is not None and now >= inflight.deadline:
            if inflight.resends < self.settings.max_retries:
                inflight.resends += 1
                inflight.deadline = now + self.settings.ack_timeout
                inflight.resend_due = True
                self.stats.retried += 1
                self._events.append(MessageRetried(inflight.msg, inflight.resends))
            else:
                self._give_up(inflight, now)
        self._promote_delayed(now)

    def _give_up(self, inflight: _InFlight, now: float) -> None:
        self._inflight = None
        failures = self._failures.get(inflight.key, 0) + 1
        self._failures[inflight.key] = failures
        delay = self.settings.backoff(failures)
        self.stats.timed_out += 1
        self._events.append(AckTimedOut(inflight.msg, inflight.key, failures, delay))
        if inflight.key in self._store:
            heapq.heappush(self._delayed, (now + delay, inflight.key))
            self._delayed_keys.add(inflight.key)
            self._ready.pop(inflight.key, None)

    def _promote_delayed(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            _, key = heapq.heappop(self._delayed)
            self._delayed_keys.discard(key)
            if key in self._store:
                self._ready[key] = None

    def events_received(self) -> list[Event]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # -- introspection ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def inflight(self) -> Message | None:
        return self._inflight.msg if self._inflight else None

    def queue_depth(self) -> int:
        """Messages waiting: NoAck FIFO plus objects in the ack store."""
        return len(self._noack or ()) + len(self._store)

    def remembered_objects(self) -> int:
        """Objects whose acked version or delete this session remembers."""
        return len(self._acked_rv) + len(self._deleted)

    def _drop(self, msg: Message, reason: str) -> None:
        self.stats.dropped += 1
        self.stats.dropped_by_reason[reason] = self.stats.dropped_by_reason.get(reason, 0) + 1
        self._events.append(MessageDropped(msg, reason))


def _reply_slot(key: str, msg: Message) -> str:
    # "/" never occurs in a UID; the request id makes the slot unique per question.
    return f"{key}/reply/{msg.parent_id or msg.msg_id}"


def _object_key(slot: str) -> str:
    """The object UID of an ack-lane slot (the slot itself, or a reply's)."""
    return slot.partition("/")[0]


def _remember(table: OrderedDict[str, _V], key: str, value: _V, limit: int) -> None:
    """Set ``table[key]`` as the most recent entry, forgetting the oldest beyond ``limit``."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
