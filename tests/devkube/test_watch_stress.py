"""Watch streams lose nothing while their wait for the next event keeps timing out
(a bookmark interval of half a millisecond makes it time out all the time)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from devkube import DevKube

WRITES = 1500


async def test_no_event_lost_to_wait_timeouts(tmp_path: Path) -> None:
    async with DevKube(kubeconfig=tmp_path / "kc", bookmark_interval=0.0005, tls=False) as kube:
        headers = {"Authorization": f"Bearer {kube.token}"}
        base = f"{kube.url}/api/v1/namespaces/default/configmaps"
        async with aiohttp.ClientSession(headers=headers) as s:
            async with s.get(base) as r:
                rv = (await r.json())["metadata"]["resourceVersion"]
            seen: list[int] = []

            async def watch() -> None:
                params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
                async with s.get(base, params=params) as r:
                    async for line in r.content:
                        ev = json.loads(line)
                        if ev["type"] == "BOOKMARK":
                            continue
                        seen.append(int(ev["object"]["data"]["n"]))
                        if len(seen) == WRITES:
                            return

            task = asyncio.create_task(watch())
            for n in range(WRITES):
                body = {"metadata": {"name": f"c{n % 7}"}, "data": {"n": str(n)}}
                async with s.post(base, json=body) as r:
                    if r.status == 409:
                        async with s.put(f"{base}/c{n % 7}", json=body) as r2:
                            assert r2.status == 200
                if n % 50 == 0:
                    await asyncio.sleep(0.002)  # let the watch idle and time out meanwhile
            async with asyncio.timeout(30):
                await task
    assert seen == list(range(WRITES))
