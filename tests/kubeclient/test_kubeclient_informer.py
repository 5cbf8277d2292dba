"""Informer and the list-then-watch layers against a real API server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import kubeclient
from fixtures.apiproxy import ApiProxy
from kubeclient import CONFIGMAPS

SETTINGS = kubeclient.ClientSettings(
    retry=kubeclient.RetrySettings(backoffs=(0.01, 0.01)),
    watch=kubeclient.WatchSettings(reconnect_backoffs=(0.05, 0.1), list_page_size=2),
)


async def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": data}


class Recorder:
    def __init__(self, inf: kubeclient.Informer) -> None:
        self.events: list[tuple[str, str, dict[str, str]]] = []
        inf.add_handlers(self.add, self.update, self.delete)

    async def add(self, obj: dict[str, Any]) -> None:
        self.events.append(("add", obj["metadata"]["name"], obj.get("data") or {}))

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        assert old["metadata"]["name"] == new["metadata"]["name"]
        self.events.append(("update", new["metadata"]["name"], new.get("data") or {}))

    async def delete(self, obj: dict[str, Any]) -> None:
        self.events.append(("delete", obj["metadata"]["name"], obj.get("data") or {}))


@pytest.fixture
async def ns(kube_api: Any) -> str:
    return str(await kube_api.make_namespace("inf"))


@pytest.fixture
async def proxied(kube_proxy: ApiProxy) -> AsyncIterator[kubeclient.KubeClient]:
    c = await kubeclient.KubeClient.from_kubeconfig(
        kube_proxy.kubeconfig, settings=SETTINGS  # type: ignore[attr-defined]
    )
    try:
        yield c
    finally:
        await c.close()


async def test_informer_sync_cache_and_handlers(proxied: kubeclient.KubeClient, ns: str) -> None:
    for i in range(3):  # more than one page of 2
        await proxied.create(CONFIGMAPS, cm(f"pre{i}", v="0"), ns)
    inf = kubeclient.Informer(proxied, CONFIGMAPS, namespace=ns)
    rec = Recorder(inf)
    inf.start()
    try:
        await inf.wait_synced(10)
        assert sorted(n for t, n, _ in rec.events if t == "add") == ["pre0", "pre1", "pre2"]
        cached = inf.get("pre1", ns)
        assert cached is not None and cached["kind"] == "ConfigMap"

        await proxied.create(CONFIGMAPS, cm("new", v="1"), ns)
        await proxied.patch(CONFIGMAPS, "new", {"data": {"v": "2"}}, ns)
        await proxied.delete(CONFIGMAPS, "pre0", ns)
        await eventually(lambda: ("delete", "pre0", {"v": "0"}) in rec.events)
        await eventually(lambda: ("update", "new", {"v": "2"}) in rec.events)
        assert inf.get("pre0", ns) is None
        assert (inf.get("new", ns) or {}).get("data") == {"v": "2"}
        assert inf.list_count == 1
    finally:
        await inf.stop()


async def test_relist_on_gone_synthesises_deltas(
    kube_proxy: ApiProxy, proxied: kubeclient.KubeClient, ns: str
) -> None:
    """Changes made while the watch is down arrive as add/update/delete after a 410."""
    for name in ("keep", "change", "remove", "reborn"):
        await proxied.create(CONFIGMAPS, cm(name, v="0"), ns)
    inf = kubeclient.Informer(proxied, CONFIGMAPS, namespace=ns)
    rec = Recorder(inf)
    inf.start()
    try:
        await inf.wait_synced(10)
        await eventually(lambda: kube_proxy.watch_count() >= 1)
        rec.events.clear()

        kube_proxy.pause_watches()  # the open stream ends; new watches wait
        await proxied.patch(CONFIGMAPS, "change", {"data": {"v": "1"}}, ns)
        await proxied.delete(CONFIGMAPS, "remove", ns)
        await proxied.create(CONFIGMAPS, cm("added", v="1"), ns)
        await proxied.delete(CONFIGMAPS, "reborn", ns)
        await proxied.create(CONFIGMAPS, cm("reborn", v="2"), ns)
        assert rec.events == []  # nothing seen while disconnected
        kube_proxy.resume_watches(gone=True)  # held watch gets "410 Expired"

        await eventually(lambda: inf.list_count == 2)
        await eventually(lambda: len(rec.events) >= 5)
        assert sorted(rec.events) == [
            ("add", "added", {"v": "1"}),
            ("add", "reborn", {"v": "2"}),
            ("delete", "reborn", {"v": "0"}),  # a new UID: delete + add, not update
            ("delete", "remove", {"v": "0"}),  # last known state
            ("update", "change", {"v": "1"}),
        ]
        reborn = [e for e in rec.events if e[1] == "reborn"]
        assert [e[0] for e in reborn] == ["delete", "add"]
        # ...and the informer keeps watching after the relist.
        await proxied.patch(CONFIGMAPS, "keep", {"data": {"v": "9"}}, ns)
        await eventually(lambda: ("update", "keep", {"v": "9"}) in rec.events)
    finally:
        await inf.stop()


async def test_informer_backs_off_on_api_errors(
    kube_proxy: ApiProxy, proxied: kubeclient.KubeClient, ns: str
) -> None:
    await proxied.create(CONFIGMAPS, cm("x"), ns)
    # More failures than the request retries: the informer's own loop must recover.
    kube_proxy.inject(503, count=6)
    inf = kubeclient.Informer(proxied, CONFIGMAPS, namespace=ns)
    inf.start()
    try:
        await inf.wait_synced(15)
        assert inf.get("x", ns) is not None
    finally:
        await inf.stop()


async def test_stop_before_sync_and_wait_synced_timeout(kube_proxy: ApiProxy,
                                                        proxied: kubeclient.KubeClient) -> None:
    kube_proxy.inject(503, count=1000)
    inf = kubeclient.Informer(proxied, CONFIGMAPS)
    inf.start()
    with pytest.raises(TimeoutError):
        await inf.wait_synced(0.3)
    await asyncio.wait_for(inf.stop(), 6)
    assert not inf.synced
