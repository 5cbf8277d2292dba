"""In-memory NodeConnections and a scripted edge, for the session-layer tests.

:class:`MemConnection` implements :class:`cloudcore.cloudhub.handler.NodeConnection`
over an asyncio queue. Every written message goes through the real codec, so a
test sees exactly what a transport would put in a frame. :class:`MemEdge`
plays the edge's metamanager: it stores what it receives by wire resource and
acks every message that carries a resource with ``OK`` (as the captures show
real edgecore doing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from beehive import codec
from beehive.message import Message
from cloudcore.cloudhub.handler import ConnectionHandler


class MemConnection:
    def __init__(self, node_id: str, *, project_id: str = "proj", transport: str = "memory"):
        self.node_id = node_id
        self.project_id = project_id
        self.transport = transport
        self.frames: asyncio.Queue[Message] = asyncio.Queue()
        self.closed: tuple[int, str] | None = None
        self.fail_writes = False

    async def write(self, msg: Message) -> None:
        if self.closed is not None or self.fail_writes:
            raise ConnectionError("connection closed")
        self.frames.put_nowait(codec.decode(codec.encode(msg)))

    async def close(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)

    async def next_frame(self, timeout: float = 5.0) -> Message:
        return await asyncio.wait_for(self.frames.get(), timeout)

    def drain(self) -> list[Message]:
        out = []
        while not self.frames.empty():
            out.append(self.frames.get_nowait())
        return out


@dataclass
class Applied:
    """What the edge holds for one wire resource."""

    uid: str
    rv: int
    content: Any


@dataclass
class MemEdge:
    """A scripted edge: applies and acks downstream messages, keeps history."""

    handler: ConnectionHandler
    conn: MemConnection
    ack: Callable[[Message], bool] = lambda msg: True
    store: dict[str, Applied] = field(default_factory=dict)
    history: dict[str, list[int]] = field(default_factory=dict)  # uid -> RVs applied
    received: list[Message] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            msg = await self.conn.frames.get()
            self.received.append(msg)
            self.apply(msg)
            if msg.resource and self.ack(msg):
                await self.handler.on_message(self.conn, msg.response("OK"))

    def apply(self, msg: Message) -> None:
        content = msg.content if isinstance(msg.content, dict) else None
        meta = (content or {}).get("metadata") or {}
        uid = meta.get("uid")
        if not uid or msg.operation not in ("insert", "update", "delete", "response"):
            return
        if msg.operation == "delete":
            # like metamanager for pods: delete only the object with that UID
            current = self.store.get(msg.resource)
            if current is not None and current.uid == uid:
                del self.store[msg.resource]
        else:
            rv = int(msg.resource_version or meta.get("resourceVersion") or 0)
            self.history.setdefault(uid, []).append(rv)
            self.store[msg.resource] = Applied(uid, rv, content)


async def wait_until(
    cond: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``cond`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
