"""Run jobs concurrently across keys but strictly in order within a key.

Used by the controllers to handle upstream messages: requests of one node are
handled in arrival order (register before patch, connected before
disconnected), different nodes in parallel (style.md rule 21).

Bounds: at most ``limit`` jobs are admitted at once (running or waiting in a
per-key queue); :meth:`KeyedWorkers.submit` blocks until there is room, which
pushes back on whoever feeds it (the beehive queue). A key's worker task exits
as soon as its queue is empty, so idle keys cost nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["KeyedWorkers"]

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class KeyedWorkers:
    def __init__(self, *, limit: int = 256, name: str = "workers") -> None:
        self._slots = asyncio.Semaphore(limit)
        self._queues: dict[str, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._name = name

    async def submit(self, key: str, job: Job) -> None:
        """Queue ``job`` behind the other jobs of ``key``; waits for a free slot."""
        await self._slots.acquire()
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(job)
            return
        self._queues[key] = deque([job])
        task = asyncio.create_task(self._drain(key), name=f"{self._name}-{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                job = queue.popleft()
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: job for %s failed", self._name, key)
                finally:
                    self._slots.release()
        finally:
            self._queues.pop(key, None)

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def close(self) -> None:
        """Cancel every running worker and wait for them."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queues.clear()
