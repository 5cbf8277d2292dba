"""KubeClient against a real API server (devkube or KUBEEDGE_TEST_KUBECONFIG)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import kubeclient
from fixtures.apiproxy import ApiProxy
from kubeclient import CONFIGMAPS, NAMESPACES, NODES, PODS, SERVICEACCOUNTS

FAST = kubeclient.ClientSettings(retry=kubeclient.RetrySettings(backoffs=(0.01, 0.01, 0.01)))


@pytest.fixture
async def client(kube_api: Any) -> AsyncIterator[kubeclient.KubeClient]:
    c = await kubeclient.KubeClient.from_kubeconfig(kube_api.kubeconfig, settings=FAST)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def ns(kube_api: Any) -> str:
    return str(await kube_api.make_namespace("kc"))


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_crud_round_trip(client: kubeclient.KubeClient, ns: str) -> None:
    created = await client.create(CONFIGMAPS, cm("a", k="1"), ns)
    assert created["metadata"]["uid"]
    got = await client.get(CONFIGMAPS, "a", ns)
    assert got["data"] == {"k": "1"}

    got["data"]["k"] = "2"
    replaced = await client.replace(CONFIGMAPS, "a", got, ns)
    assert replaced["data"]["k"] == "2"
    assert replaced["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]

    merged = await client.patch(CONFIGMAPS, "a", {"data": {"m": "x"}}, ns)
    assert merged["data"] == {"k": "2", "m": "x"}
    jsonp = await client.patch(
        CONFIGMAPS, "a", [{"op": "remove", "path": "/data/m"}], ns, patch_type="json"
    )
    assert jsonp["data"] == {"k": "2"}
    strategic = await client.patch(
        CONFIGMAPS, "a", '{"metadata":{"labels":{"l":"v"}}}', ns, patch_type="strategic"
    )
    assert strategic["metadata"]["labels"] == {"l": "v"}

    listed = await client.list(CONFIGMAPS, ns, label_selector="l=v")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert listed["metadata"]["resourceVersion"]

    await client.delete(CONFIGMAPS, "a", ns, body={"gracePeriodSeconds": 0})
    with pytest.raises(kubeclient.NotFound) as info:
        await client.get(CONFIGMAPS, "a", ns)
    assert info.value.status == 404
    assert info.value.body["kind"] == "Status"
    assert info.value.body["reason"] == "NotFound"


async def test_error_tree(client: kubeclient.KubeClient, ns: str) -> None:
    await client.create(CONFIGMAPS, cm("dup"), ns)
    with pytest.raises(kubeclient.AlreadyExists) as exists:
        await client.create(CONFIGMAPS, cm("dup"), ns)
    assert isinstance(exists.value, kubeclient.Conflict)
    assert exists.value.reason == "AlreadyExists"
    assert exists.value.__cause__ is not None  # chained to the aiohttp error

    stale = await client.get(CONFIGMAPS, "dup", ns)
    await client.patch(CONFIGMAPS, "dup", {"data": {"x": "1"}}, ns)
    with pytest.raises(kubeclient.Conflict) as conflict:
        await client.replace(CONFIGMAPS, "dup", stale, ns)
    assert not isinstance(conflict.value, kubeclient.AlreadyExists)

    with pytest.raises(kubeclient.Invalid):
        await client.create(CONFIGMAPS, cm("Not_A_Valid_Name"), ns)


async def test_paged_list(client: kubeclient.KubeClient, ns: str) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, cm(f"p{i}"), ns)
    listed = await kubeclient.list_all(client, CONFIGMAPS, namespace=ns, page_size=2)
    names = sorted(i["metadata"]["name"] for i in listed.items)
    assert [n for n in names if n.startswith("p")] == [f"p{i}" for i in range(5)]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in listed.items)


async def test_token_request(client: kubeclient.KubeClient, ns: str) -> None:
    try:
        await client.get(SERVICEACCOUNTS, "default", ns)
    except kubeclient.NotFound:
        await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, ns)
    answer = await client.create_token(ns, "default", {"spec": {"expirationSeconds": 3600}})
    assert answer["kind"] == "TokenRequest"
    assert answer["status"]["token"].count(".") == 2


async def test_watch_single_request(client: kubeclient.KubeClient, ns: str) -> None:
    listed = await client.list(CONFIGMAPS, ns)
    rv = listed["metadata"]["resourceVersion"]
    events: list[kubeclient.WatchEvent] = []

    async def consume() -> None:
        async for ev in client.watch(CONFIGMAPS, ns, resource_version=rv, timeout_seconds=30):
            events.append(ev)
            if ev.type == "DELETED":
                return

    task = asyncio.create_task(consume())
    await client.create(CONFIGMAPS, cm("w", a="1"), ns)
    await client.patch(CONFIGMAPS, "w", {"data": {"a": "2"}}, ns)
    await client.delete(CONFIGMAPS, "w", ns)
    await asyncio.wait_for(task, 20)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1].object["data"] == {"a": "2"}


async def test_watch_stopper_ends_quietly(client: kubeclient.KubeClient, ns: str) -> None:
    stopper = asyncio.Event()
    added = asyncio.Event()
    got: list[str] = []

    async def consume() -> None:
        async for ev in client.watch(CONFIGMAPS, ns, stopper=stopper, timeout_seconds=60):
            got.append(ev.type)
            added.set()

    task = asyncio.create_task(consume())
    await client.create(CONFIGMAPS, cm("s"), ns)
    await asyncio.wait_for(added.wait(), 10)
    stopper.set()
    await asyncio.wait_for(task, 5)  # ends without an error
    assert "ADDED" in got


async def test_cluster_scoped_and_namespace_guard(client: kubeclient.KubeClient) -> None:
    nodes = await client.list(NODES)
    assert "items" in nodes
    assert (await client.get(NAMESPACES, "default"))["metadata"]["name"] == "default"
    with pytest.raises(ValueError, match="cluster-scoped"):
        await client.get(NODES, "x", "default")
    with pytest.raises(kubeclient.NotFound):
        await client.get(PODS, "absent", "default")


# -- retries, through the fault-injecting proxy ----------------------------------------


@pytest.fixture
async def proxied(kube_proxy: ApiProxy) -> AsyncIterator[kubeclient.KubeClient]:
    c = await kubeclient.KubeClient.from_kubeconfig(
        kube_proxy.kubeconfig, settings=FAST  # type: ignore[attr-defined]
    )
    try:
        yield c
    finally:
        await c.close()


async def test_retries_5xx_then_succeeds(kube_proxy: ApiProxy, proxied: kubeclient.KubeClient,
                                         caplog: pytest.LogCaptureFixture) -> None:
    kube_proxy.inject(503, count=2)
    before = len(kube_proxy.requests)
    with caplog.at_level("WARNING", logger="kubeclient.client"):
        ns = await proxied.get(NAMESPACES, "default")
    assert ns["metadata"]["name"] == "default"
    assert len(kube_proxy.requests) - before == 3
    assert "attempt 1/4" in caplog.text and "attempt 2/4" in caplog.text


async def test_gives_up_after_the_last_backoff(kube_proxy: ApiProxy,
                                               proxied: kubeclient.KubeClient) -> None:
    kube_proxy.inject(500, count=10)
    with pytest.raises(kubeclient.ServerError) as info:
        await proxied.get(NAMESPACES, "default")
    assert info.value.status == 500
    assert len(kube_proxy.requests) == 4


async def test_429_honours_retry_after(kube_proxy: ApiProxy,
                                       proxied: kubeclient.KubeClient) -> None:
    kube_proxy.inject(429, count=1, retry_after=1)
    start = time.monotonic()
    await proxied.get(NAMESPACES, "default")
    assert time.monotonic() - start >= 0.9  # waited Retry-After, not the 0.01 s back-off


async def test_4xx_is_not_retried(kube_proxy: ApiProxy, proxied: kubeclient.KubeClient) -> None:
    kube_proxy.inject(403, count=1)
    with pytest.raises(kubeclient.Forbidden):
        await proxied.get(NAMESPACES, "default")
    assert len(kube_proxy.requests) == 1


async def test_connection_refused_is_retried_then_escalated(tmp_path: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = kubeclient.ClusterConfig(server=f"http://127.0.0.1:{port}")
    async with kubeclient.KubeClient(cfg, settings=FAST) as c:
        with pytest.raises(kubeclient.ApiConnectionError, match="after 4 attempts") as info:
            await c.get(NAMESPACES, "default")
    assert info.value.__cause__ is not None


async def _watch_first(c: kubeclient.KubeClient, ns: str, rv: str) -> kubeclient.WatchEvent:
    async for ev in c.watch(CONFIGMAPS, ns, resource_version=rv, timeout_seconds=30):
        return ev
    raise AssertionError("the watch ended without an event")


def _big_data(kube_api: Any) -> str:
    # devkube takes bodies up to 3 MiB; a real cluster's etcd about 1.5 MiB
    size = (1400 if kube_api.is_real else 2560) * 1024
    pattern = "0123456789abcdefghijklmnopqrstuvwxyz\u00e9"  # a multi-byte char too
    return (pattern * (size // len(pattern) + 1))[:size]


async def test_watch_delivers_a_multi_mib_object_intact(
    client: kubeclient.KubeClient, ns: str, kube_api: Any
) -> None:
    rv = (await client.list(CONFIGMAPS, ns))["metadata"]["resourceVersion"]
    task = asyncio.create_task(_watch_first(client, ns, rv))
    data = _big_data(kube_api)
    await client.create(CONFIGMAPS, cm("big", blob=data), ns)
    ev = await asyncio.wait_for(task, 20)
    assert ev.type == "ADDED"
    assert ev.object["data"]["blob"] == data


async def test_watch_line_over_the_cap_fails_clearly(ns: str, kube_api: Any) -> None:
    settings = kubeclient.ClientSettings(
        retry=FAST.retry, watch=kubeclient.WatchSettings(max_line=1024 * 1024)
    )
    small = await kubeclient.KubeClient.from_kubeconfig(kube_api.kubeconfig, settings=settings)
    try:
        rv = (await small.list(CONFIGMAPS, ns))["metadata"]["resourceVersion"]
        task = asyncio.create_task(_watch_first(small, ns, rv))
        await small.create(CONFIGMAPS, cm("huge", blob=_big_data(kube_api)), ns)
        with pytest.raises(kubeclient.WatchError, match="watch line exceeds 1048576 bytes"):
            await asyncio.wait_for(task, 20)
    finally:
        await small.close()
