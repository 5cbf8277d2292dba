"""Per-pod workers: syncs of one pod never overlap, and few run at once.

Mirrors kubelet's ``pod_workers.go`` and style rule 21. ``poke(uid)`` asks for
a sync of pod ``uid``; if one is running, exactly one more runs after it
(requests coalesce: a pod's sync always works from the newest state, so
running it once more covers any number of pokes). ``poke(uid, delay)`` asks
for a sync later (crash-loop back-off); an earlier request wins.

At most ``limit`` syncs run at the same time (a semaphore); a worker task
exists only while it has work, so idle pods cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["PodWorkers"]

log = logging.getLogger(__name__)


@dataclass
class _State:
    pending: bool = False
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    due: float = 0.0


@dataclass
class PodWorkers:
    sync: Callable[[str], Awaitable[None]]
    limit: int = 8
    _states: dict[str, _State] = field(default_factory=dict)
    _sem: asyncio.Semaphore = field(init=False)
    _closed: bool = False

    def __post_init__(self) -> None:
        self._sem = asyncio.Semaphore(self.limit)

    def poke(self, uid: str, delay: float = 0.0) -> None:
        if self._closed:
            return
        st = self._states.setdefault(uid, _State())
        if delay > 0:
            loop = asyncio.get_running_loop()
            due = loop.time() + delay
            if st.timer is not None and st.due <= due:
                return
            if st.timer is not None:
                st.timer.cancel()
            st.due = due
            st.timer = loop.call_at(due, self._fire, uid)
            return
        st.pending = True
        if st.task is None:
            st.task = asyncio.create_task(self._run(uid, st), name=f"podworker-{uid}")

    def _fire(self, uid: str) -> None:
        st = self._states.get(uid)
        if st is not None:
            st.timer = None
        self.poke(uid)

    def busy(self, uid: str) -> bool:
        st = self._states.get(uid)
        return st is not None and st.task is not None

    async def _run(self, uid: str, st: _State) -> None:
        try:
            while st.pending and not self._closed:
                st.pending = False
                async with self._sem:
                    try:
                        await self.sync(uid)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("sync of pod %s failed", uid)
        finally:
            st.task = None
            if st.timer is None and not st.pending:
                self._states.pop(uid, None)

    async def close(self) -> None:
        self._closed = True
        tasks = []
        for st in self._states.values():
            if st.timer is not None:
                st.timer.cancel()
            if st.task is not None:
                st.task.cancel()
                tasks.append(st.task)
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._states.clear()

    async def wait_idle(self) -> None:
        """Wait until no sync is running (tests, shutdown)."""
        while any(st.task is not None for st in self._states.values()):
            tasks = [st.task for st in self._states.values() if st.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
