"""The message context: how beehive modules talk to each other.

Mirrors KubeEdge's channel context
(``staging/src/github.com/kubeedge/beehive/pkg/core/context/context_channel.go``)
on asyncio:

* every registered module owns one bounded mailbox (FIFO);
* ``send`` puts a message on a module's queue, ``receive`` takes the next one;
* ``send_sync`` sends and waits for the message whose ``parent_msg_id`` is the
  request's ``msg_id``; whoever handles the request answers with ``send_resp``;
* ``send_to_group`` / ``send_to_group_sync`` do the same for every module of a
  group.

Queue policy: **block**. ``send`` waits for room (back-pressure on the sender);
with a ``timeout`` it gives up with :class:`QueueFull`. ``try_send`` never waits
and raises :class:`QueueFull` at once. Every refusal is counted in
:attr:`Context.stats`. Pending sync waiters live in one table keyed by msg_id;
each has its deadline, and :meth:`Context.close` fails every one of them with
:class:`ContextClosed` so none is left hanging. Close also drops queued
messages and wakes every blocked ``send`` and ``receive`` with
:class:`ContextClosed`; nothing is delivered after close.

A response (``send_resp``) never waits: it completes the pending request
whose msg_id is its ``parent_msg_id``, or is counted as
``unmatched_response`` and dropped when nobody waits any more (the request
timed out). ``send_to_group_sync`` waits for one answer from every member;
when the deadline passes first it raises :class:`SyncTimeout` and the
answers that did arrive are dropped, as KubeEdge's SendToGroupSync does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from dataclasses import dataclass, field

from beehive.exceptions import (
    ContextClosed,
    QueueFull,
    SyncTimeout,
    UnknownGroup,
    UnknownModule,
)
from beehive.message import Message

__all__ = ["DEFAULT_QUEUE_SIZE", "Context"]

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1024


class _Mailbox:
    """A bounded FIFO of messages for one module, that can be closed.

    asyncio.Queue cannot be closed: a sender blocked on a full queue would
    stay blocked forever, and a sentinel pushed in on close can end up behind
    a late message. Here ``close`` drops what is queued and wakes every
    blocked sender and receiver with :class:`ContextClosed`; nothing is
    delivered after close.
    """

    __slots__ = ("_closed", "_getters", "_items", "_maxsize", "_putters")

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._items: deque[Message] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def qsize(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self._maxsize

    @staticmethod
    def _wake(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def put_nowait(self, msg: Message) -> bool:
        """Queue ``msg``; False when full. Raises ContextClosed after close."""
        if self._closed:
            raise ContextClosed("the context is closed")
        if self.full():
            return False
        self._items.append(msg)
        self._wake(self._getters)
        return True

    async def put(self, msg: Message) -> None:
        while not self.put_nowait(msg):
            await self._wait(self._putters)

    async def get(self) -> Message:
        while True:
            if self._closed:
                raise ContextClosed("the context is closed")
            if self._items:
                msg = self._items.popleft()
                self._wake(self._putters)
                return msg
            await self._wait(self._getters)

    async def _wait(self, waiters: deque[asyncio.Future[None]]) -> None:
        fut = asyncio.get_running_loop().create_future()
        waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            # If we were woken and cancelled in the same step, pass the wake
            # on so that the room (or the message) is not lost.
            if fut.done() and not fut.cancelled():
                self._wake(waiters)
            else:
                with contextlib.suppress(ValueError):
                    waiters.remove(fut)
            raise

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        for waiters in (self._getters, self._putters):
            while waiters:
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_result(None)


@dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[list[Message]]
    expected: int
    responses: list[Message] = field(default_factory=list)


class Context:
    """Routes messages between the modules of one process."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size <= 0:
            raise ValueError("queue_size must be positive")
        self._queue_size = queue_size
        self._queues: dict[str, _Mailbox] = {}
        self._groups: dict[str, list[str]] = {}
        self._waiters: dict[str, _Waiter] = {}
        self._closed = False
        #: counters: ``sent``, ``received``, ``queue_full``, ``sync_timeout``,
        #: ``unmatched_response``
        self.stats: Counter[str] = Counter()

    # -- registration --------------------------------------------------------

    def add_module(self, name: str, group: str = "") -> None:
        """Give ``name`` a queue and add it to ``group``; idempotent."""
        if name not in self._queues:
            self._queues[name] = _Mailbox(self._queue_size)
        if group:
            members = self._groups.setdefault(group, [])
            if name not in members:
                members.append(name)

    def remove_module(self, name: str) -> None:
        """Forget ``name``; its blocked senders and receivers get ContextClosed."""
        q = self._queues.pop(name, None)
        if q is not None:
            q.close()
        for members in self._groups.values():
            if name in members:
                members.remove(name)

    def modules(self) -> list[str]:
        return list(self._queues)

    def group_members(self, group: str) -> list[str]:
        return list(self._groups.get(group, ()))

    def queue_depth(self, module: str) -> int:
        q = self._queues.get(module)
        return q.qsize() if q is not None else 0

    @property
    def closed(self) -> bool:
        return self._closed

    # -- sending ---------------------------------------------------------------

    def _queue(self, module: str) -> _Mailbox:
        if self._closed:
            raise ContextClosed("the context is closed")
        try:
            return self._queues[module]
        except KeyError:
            raise UnknownModule(f"no module named {module!r}") from None

    async def send(self, module: str, msg: Message, *, timeout: float | None = None) -> None:
        """Put ``msg`` on ``module``'s queue, waiting for room.

        Raises:
            UnknownModule: ``module`` is not registered.
            QueueFull: ``timeout`` passed and the queue is still full.
            ContextClosed: the context is closed.
        """
        q = self._queue(module)
        if timeout is None:
            await q.put(msg)
        else:
            try:
                async with asyncio.timeout(timeout):
                    await q.put(msg)
            except TimeoutError:
                self.stats["queue_full"] += 1
                raise QueueFull(f"queue of {module!r} stayed full for {timeout}s") from None
        self.stats["sent"] += 1

    def try_send(self, module: str, msg: Message) -> None:
        """Put ``msg`` on ``module``'s queue or raise :class:`QueueFull` at once."""
        q = self._queue(module)
        if not q.put_nowait(msg):
            self.stats["queue_full"] += 1
            raise QueueFull(f"queue of {module!r} is full ({self._queue_size})")
        self.stats["sent"] += 1

    async def receive(self, module: str) -> Message:
        """The next message for ``module``; raises :class:`ContextClosed` after close."""
        msg = await self._queue(module).get()
        self.stats["received"] += 1
        return msg

    async def send_to_group(
        self, group: str, msg: Message, *, timeout: float | None = None
    ) -> None:
        """Send a copy of ``msg`` to every module of ``group``."""
        for module in self._members(group):
            await self.send(module, msg.copy(), timeout=timeout)

    def _members(self, group: str) -> list[str]:
        if self._closed:
            raise ContextClosed("the context is closed")
        members = self._groups.get(group)
        if not members:
            raise UnknownGroup(f"no module in group {group!r}")
        return list(members)

    # -- request / response ----------------------------------------------------

    async def send_sync(self, module: str, msg: Message, timeout: float) -> Message:
        """Send ``msg`` to ``module`` and wait for the response to it.

        The response is the message passed to :meth:`send_resp` whose
        ``parent_msg_id`` equals ``msg.header.msg_id``. ``timeout`` covers both
        the wait for queue room and the wait for the answer.

        Raises:
            SyncTimeout: no answer within ``timeout`` seconds.
        """
        self._queue(module)  # fail fast on unknown modules
        responses = await self._request([module], msg, timeout)
        return responses[0]

    async def send_to_group_sync(self, group: str, msg: Message, timeout: float) -> list[Message]:
        """Send ``msg`` to every module of ``group``; wait for one answer from each."""
        return await self._request(self._members(group), msg, timeout)

    async def _request(self, modules: list[str], msg: Message, timeout: float) -> list[Message]:
        msg_id = msg.header.msg_id
        if not msg_id:
            raise ValueError("a synchronous request needs a msg_id")
        if msg_id in self._waiters:
            raise ValueError(f"a request with msg_id {msg_id} is already pending")
        msg.header.sync = True
        loop = asyncio.get_running_loop()
        waiter = _Waiter(future=loop.create_future(), expected=len(modules))
        self._waiters[msg_id] = waiter
        try:
            async with asyncio.timeout(timeout):
                for module in modules:
                    await self.send(module, msg if len(modules) == 1 else msg.copy())
                return await waiter.future
        except TimeoutError:
            self.stats["sync_timeout"] += 1
            raise SyncTimeout(
                f"no response to {msg.describe()} within {timeout}s "
                f"({len(waiter.responses)}/{waiter.expected} answered)"
            ) from None
        finally:
            self._waiters.pop(msg_id, None)

    def send_resp(self, msg: Message) -> bool:
        """Deliver ``msg`` to the request waiting for it.

        Returns ``True`` when a pending ``send_sync`` took it, ``False`` when
        no request with ``msg.parent_msg_id`` is waiting (it timed out, or the
        message answers a request from another process); the caller decides
        what an unmatched response means.
        """
        waiter = self._waiters.get(msg.header.parent_msg_id)
        if waiter is None or waiter.future.done():
            self.stats["unmatched_response"] += 1
            log.debug("no pending request for response %s", msg.describe())
            return False
        waiter.responses.append(msg)
        if len(waiter.responses) >= waiter.expected:
            waiter.future.set_result(waiter.responses)
        return True

    def pending_requests(self) -> int:
        return len(self._waiters)

    # -- shutdown -------------------------------------------------------------

    def close(self) -> None:
        """Fail every pending request and wake every receiver; idempotent."""
        if self._closed:
            return
        self._closed = True
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(ContextClosed("the context closed"))
        self._waiters.clear()
        for q in self._queues.values():
            q.close()
