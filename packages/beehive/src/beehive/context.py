"""The message context: how beehive modules talk to each other.

Mirrors KubeEdge's channel context
(``staging/src/github.com/kubeedge/beehive/pkg/core/context/context_channel.go``)
on asyncio:

* every registered module owns one bounded :class:`asyncio.Queue`;
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
:class:`ContextClosed` so none is left hanging.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
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


class _Closed:
    """Sentinel left in a queue after close so receivers wake up."""


_CLOSED = _Closed()


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
        self._queues: dict[str, asyncio.Queue[Message | _Closed]] = {}
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
            self._queues[name] = asyncio.Queue(self._queue_size)
        if group:
            members = self._groups.setdefault(group, [])
            if name not in members:
                members.append(name)

    def remove_module(self, name: str) -> None:
        self._queues.pop(name, None)
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

    def _queue(self, module: str) -> asyncio.Queue[Message | _Closed]:
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
        try:
            q.put_nowait(msg)
        except asyncio.QueueFull:
            self.stats["queue_full"] += 1
            raise QueueFull(f"queue of {module!r} is full ({self._queue_size})") from None
        self.stats["sent"] += 1

    async def receive(self, module: str) -> Message:
        """The next message for ``module``; raises :class:`ContextClosed` after close."""
        q = self._queue(module)
        item = await q.get()
        if isinstance(item, _Closed):
            q.put_nowait(item)  # leave it for any other receiver of this queue
            raise ContextClosed("the context is closed")
        self.stats["received"] += 1
        return item

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
            while not q.empty():
                q.get_nowait()
            q.put_nowait(_CLOSED)
