"""ObjectSync records off the delivery path, against a real API server.

Delivery must not wait for the API server: the records a message needs are
read from the informer caches and written in the background, retried until
they succeed, so an API server that refuses writes for a while delays the
records, never the pods, and loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import kubeclient
from beehive.context import Context
from cloudcore.cloudhub.objectsync import DEFAULT_BUSY_WRITERS, ObjectSyncRecorder
from cloudcore.cloudhub.pressure import DeliveryPressure
from cloudcore.cloudhub.sessions import SessionManager, SessionSettings
from cloudcore.crds import install_crds
from cloudcore.synccontroller.module import SyncController
from cloudcore.syncrecords import SyncRecordInformers
from cloudhub_delivery.helpers import down
from cloudhub_delivery.memconn import MemConnection, MemEdge, wait_until
from fixtures.apiproxy import ApiProxy

# No client-side retries: the recorder's writer is what must retry.
NO_RETRY = kubeclient.ClientSettings(retry=kubeclient.RetrySettings(backoffs=()))


@pytest.fixture
async def proxied(kube_api: Any, kube_proxy: ApiProxy) -> AsyncIterator[kubeclient.KubeClient]:
    direct = await kubeclient.KubeClient.from_kubeconfig(kube_api.kubeconfig)
    try:
        await install_crds(direct, ("reliablesyncs",))
    finally:
        await direct.close()
    client = await kubeclient.KubeClient.from_kubeconfig(
        kube_proxy.kubeconfig, settings=NO_RETRY  # type: ignore[attr-defined]
    )
    try:
        yield client
    finally:
        await client.close()


async def records_in(client: kubeclient.KubeClient, ns: str) -> dict[str, str]:
    listed = await client.list(kubeclient.OBJECTSYNCS, namespace=ns)
    return {
        o["metadata"]["name"]: (o.get("status") or {}).get("objectResourceVersion", "0")
        for o in listed["items"]
    }


async def test_delivery_goes_on_while_record_writes_fail_and_the_records_catch_up(
    kube_api: Any, kube_proxy: ApiProxy, proxied: kubeclient.KubeClient
) -> None:
    ns = await kube_api.make_namespace("osw")
    nodes = [await kube_api.make_node("edge") for _ in range(2)]
    records = SyncRecordInformers(proxied)
    recorder = ObjectSyncRecorder(proxied, records=records)
    manager = SessionManager(
        SessionSettings(keepalive_interval=None, authorization=False), recorder=recorder
    )
    ctx = Context()
    pump = asyncio.create_task(manager.run(ctx))
    edges: list[MemEdge] = []
    try:
        await asyncio.wait_for(manager.wait_ready(), 5)
        recorder.start()
        await records.wait_synced(timeout=10)
        for node in nodes:
            conn = MemConnection(node)
            edge = MemEdge(manager, conn)
            edge.start()
            edges.append(edge)
            assert await manager.on_connect(conn)

        # From now on the API server refuses every request.
        kube_proxy.inject(503, count=10_000)
        for node in nodes:
            for i in range(5):
                # three versions of each object: the edge gets each in order
                for rv in ("10", "11", "12"):
                    msg = down(
                        "update", node=node, namespace=ns, name=f"cm-{i}",
                        uid=f"{node}-u{i}", rv=rv,
                    )
                    await ctx.send("cloudhub", msg)
        # Every object reaches its edge at its newest version and is acked...
        await wait_until(
            lambda: all(
                len(e.store) == 5 and all(a.rv == 12 for a in e.store.values()) for e in edges
            ),
            what="delivery while the API refuses writes",
        )
        for edge in edges:
            for versions in edge.history.values():
                assert versions == sorted(set(versions))
        # ...while no record could be written yet.
        assert recorder.writer.retried > 0
        assert len(recorder.writer) > 0
        # The API server is back: the records catch up with what was acked.
        kube_proxy._faults.clear()  # the proxy has no public "heal" control
        await recorder.flush(timeout=30)
        expected = {f"{node}.{node}-u{i}": "12" for node in nodes for i in range(5)}
        assert await records_in(proxied, ns) == expected
        # what this process acked is not sent again after a reconnect, even
        # before the watch has shown the records
        node = nodes[0]
        conn = MemConnection(node)
        await edges[0].stop()
        edges[0].conn = conn
        edges[0].start()
        assert await manager.on_connect(conn)
        await ctx.send(
            "cloudhub",
            down("update", node=node, namespace=ns, name="cm-0", uid=f"{node}-u0", rv="12"),
        )
        await ctx.send(
            "cloudhub",
            down("update", node=node, namespace=ns, name="cm-1", uid=f"{node}-u1", rv="13"),
        )
        await wait_until(lambda: edges[0].store[f"{ns}/configmap/cm-1"].rv == 13, what="rv 13")
        assert edges[0].history[f"{node}-u0"].count(12) == 1
    finally:
        kube_proxy._faults.clear()
        for edge in edges:
            await edge.stop()
        await manager.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        ctx.close()


async def test_close_writes_what_is_queued(
    kube_api: Any, kube_proxy: ApiProxy, proxied: kubeclient.KubeClient
) -> None:
    ns = await kube_api.make_namespace("osw")
    node = await kube_api.make_node("edge")
    recorder = ObjectSyncRecorder(proxied)
    before = len(kube_proxy.requests)
    for i in range(30):
        msg = down("update", node=node, namespace=ns, name=f"cm-{i}", uid=f"u{i}", rv="5")
        assert await recorder.recorded_version(node, msg) == "0"
        await recorder.record_ack(node, msg)
    await recorder.close()
    assert len(recorder.writer) == 0
    # each record was created and given its version: two writes, nothing wasted
    writes = [m for m, path in kube_proxy.requests[before:] if "objectsyncs" in path]
    assert sorted(writes).count("POST") == 30
    assert writes.count("PATCH") == 30
    assert await records_in(proxied, ns) == {f"{node}.u{i}": "5" for i in range(30)}


async def test_synccontroller_rounds_read_the_caches_not_the_api(
    kube_api: Any, kube_proxy: ApiProxy, proxied: kubeclient.KubeClient
) -> None:
    ns = await kube_api.make_namespace("osw")
    node = await kube_api.make_node("edge")
    cm = await proxied.create(
        kubeclient.CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "live"}, "data": {}},
        namespace=ns,
    )
    uid, rv = cm["metadata"]["uid"], cm["metadata"]["resourceVersion"]
    await proxied.create(
        kubeclient.OBJECTSYNCS,
        {
            "apiVersion": "reliablesyncs.kubeedge.io/v1alpha1",
            "kind": "ObjectSync",
            "metadata": {"name": f"{node}.{uid}"},
            "spec": {"objectAPIVersion": "v1", "objectKind": "ConfigMap", "objectName": "live"},
        },
        namespace=ns,
    )
    records = SyncRecordInformers(proxied)
    informers = {
        kubeclient.CONFIGMAPS: kubeclient.Informer(proxied, kubeclient.CONFIGMAPS, namespace=ns),
        kubeclient.NODES: kubeclient.Informer(proxied, kubeclient.NODES),
    }
    sync = SyncController(proxied, period=60, records=records, informers=informers.get)
    ctx = Context()
    ctx.add_module("cloudhub", "cloudhub")
    task = asyncio.create_task(sync.start(ctx))
    for informer in informers.values():
        informer.start()
    try:
        await records.wait_synced(timeout=10)
        for informer in informers.values():
            await informer.wait_synced(timeout=10)
        before = len(kube_proxy.requests)
        done = await sync.reconcile_once(ctx)
        assert done == {"updates": 1}
        update = []
        while ctx.queue_depth("cloudhub"):
            update.append(await ctx.receive("cloudhub"))
        assert [(m.operation, m.resource_version) for m in update][-1] == ("update", rv)
        # the round asked the API server nothing (the watches keep running)
        asked = [r for r in kube_proxy.requests[before:] if "watch=" not in r[1]]
        assert asked == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for informer in informers.values():
            await informer.stop()
        ctx.close()
    # the synccontroller stopped the record watches it started
    assert not records.watching


async def test_record_writes_yield_to_a_delivery_burst_and_still_all_land(
    kube_api: Any, kube_proxy: ApiProxy, proxied: kubeclient.KubeClient
) -> None:
    """While delivery is busy only the writer's few busy-time workers write (the
    rest wait for a lull), so the records keep moving but do not take the CPU
    and the API server from the pods, and they all land even if the burst
    never ends."""
    ns = await kube_api.make_namespace("osw")
    node = await kube_api.make_node("edge")
    # a burst that outlasts the test: delivery noted, quiet period of a minute
    pressure = DeliveryPressure(quiet=60)
    pressure.note()
    recorder = ObjectSyncRecorder(proxied, pressure=pressure)
    writer = recorder.writer
    try:
        for i in range(40):
            msg = down("update", node=node, namespace=ns, name=f"cm-{i}", uid=f"u{i}", rv="7")
            assert await recorder.recorded_version(node, msg) == "0"
            await recorder.record_ack(node, msg)
        await recorder.flush(timeout=30)
        assert pressure.busy
        assert writer.max_in_flight == DEFAULT_BUSY_WRITERS
        assert await records_in(proxied, ns) == {f"{node}.u{i}": "7" for i in range(40)}
    finally:
        await recorder.close()


async def test_delivery_pressure_goes_calm_after_the_quiet_period() -> None:
    pressure = DeliveryPressure(quiet=0.1)
    assert not pressure.busy
    await asyncio.wait_for(pressure.wait_calm(), 1)  # never noted: calm at once
    pressure.note()
    assert pressure.busy
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(pressure.wait_calm(), 5)
    assert loop.time() - started >= 0.09
    assert not pressure.busy
