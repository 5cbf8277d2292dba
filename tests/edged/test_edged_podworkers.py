"""Per-pod workers: one sync per pod at a time, coalesced pokes, a global limit."""

from __future__ import annotations

import asyncio

from edgecore.edged.podworkers import PodWorkers
from edged.helpers import wait_for


async def test_syncs_of_one_pod_never_overlap_and_pokes_coalesce() -> None:
    running: dict[str, int] = {}
    overlap = False
    calls: list[str] = []
    gate = asyncio.Event()

    async def sync(uid: str) -> None:
        nonlocal overlap
        running[uid] = running.get(uid, 0) + 1
        overlap = overlap or running[uid] > 1
        calls.append(uid)
        await gate.wait()
        running[uid] -= 1

    workers = PodWorkers(sync, limit=4)
    workers.poke("a")
    await wait_for(lambda: calls == ["a"], what="first sync")
    for _ in range(5):  # while it runs: these coalesce into one more sync
        workers.poke("a")
    gate.set()
    await workers.wait_idle()
    assert calls == ["a", "a"]
    assert not overlap
    await workers.close()


async def test_concurrency_limit_and_delayed_poke() -> None:
    active = 0
    peak = 0
    done: list[str] = []

    async def sync(uid: str) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        done.append(uid)

    workers = PodWorkers(sync, limit=2)
    for i in range(6):
        workers.poke(f"p{i}")
    await workers.wait_idle()
    assert sorted(done) == [f"p{i}" for i in range(6)]
    assert peak == 2

    loop = asyncio.get_running_loop()
    start = loop.time()
    workers.poke("late", 0.2)
    workers.poke("late", 5.0)  # an earlier request wins
    await wait_for(lambda: "late" in done, timeout=3, what="delayed sync")
    assert 0.2 <= loop.time() - start < 3
    await workers.close()


async def test_a_failing_sync_does_not_stop_the_worker() -> None:
    calls = 0

    async def sync(uid: str) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    workers = PodWorkers(sync, limit=1)
    workers.poke("x")
    await workers.wait_idle()
    workers.poke("x")
    await workers.wait_idle()
    assert calls == 2
    await workers.close()
