"""20 writers patching one object with resourceVersion preconditions lose no update,
and 5 watchers each see every change exactly once, in order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from fixtures.apiserver import KubeApi

WRITERS = 20
UPDATES_EACH = 5
WATCHERS = 5


async def test_concurrent_writers_and_watchers(kube_api: KubeApi) -> None:
    ns = await kube_api.make_namespace("conc")
    base = f"{kube_api.server}/api/v1/namespaces/{ns}/configmaps"
    created = await kube_api.request("POST", base.removeprefix(kube_api.server),
                                     {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    start_rv = created["metadata"]["resourceVersion"]
    total = WRITERS * UPDATES_EACH
    conflicts = 0
    headers = {"Authorization": f"Bearer {kube_api.token}"}
    connector = aiohttp.TCPConnector(ssl=kube_api.ssl_context or False, limit=0)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def watcher() -> list[tuple[int, int]]:
            seen: list[tuple[int, int]] = []
            params = {"watch": "1", "resourceVersion": start_rv,
                      "fieldSelector": "metadata.name=counter"}
            async with session.get(base, params=params) as resp:
                assert resp.status == 200
                async for line in resp.content:
                    ev = json.loads(line)
                    assert ev["type"] == "MODIFIED", ev
                    obj = ev["object"]
                    seen.append((int(obj["metadata"]["resourceVersion"]), int(obj["data"]["n"])))
                    if int(obj["data"]["n"]) == total:
                        return seen
            raise AssertionError("watch ended early")

        async def writer() -> None:
            nonlocal conflicts
            done = 0
            while done < UPDATES_EACH:
                async with session.get(f"{base}/counter") as resp:
                    cur: dict[str, Any] = await resp.json()
                patch = {"metadata": {"resourceVersion": cur["metadata"]["resourceVersion"]},
                         "data": {"n": str(int(cur["data"]["n"]) + 1)}}
                async with session.patch(
                    f"{base}/counter", data=json.dumps(patch),
                    headers={"Content-Type": "application/merge-patch+json"},
                ) as resp:
                    if resp.status == 409:
                        body = await resp.json()
                        assert body["reason"] == "Conflict"
                        conflicts += 1
                        continue
                    assert resp.status == 200, await resp.text()
                    done += 1

        watchers = [asyncio.create_task(watcher()) for _ in range(WATCHERS)]
        async with asyncio.timeout(60):
            await asyncio.gather(*(writer() for _ in range(WRITERS)))
            results = await asyncio.gather(*watchers)
        async with session.get(f"{base}/counter") as resp:
            final = await resp.json()
    assert final["data"]["n"] == str(total)  # no update lost
    assert conflicts > 0  # the writers really did race
    for seen in results:
        assert [n for _, n in seen] == list(range(1, total + 1))  # each once, in order
        rvs = [rv for rv, _ in seen]
        assert rvs == sorted(rvs) and len(set(rvs)) == total
