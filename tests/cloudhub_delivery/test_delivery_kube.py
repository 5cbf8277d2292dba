"""Reliable delivery against a real API server (devkube): ObjectSync records,
the synccontroller, and the issue's big test: 500 changes while a node is
disconnected, then the same across a cloudcore restart."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import kubeclient
from beehive.context import Context
from beehive.message import Message
from cloudcore.cloudhub.objectsync import ObjectSyncRecorder
from cloudcore.crds import install_crds
from cloudcore.synccontroller.module import SyncController
from cloudhub_delivery.helpers import down
from cloudhub_delivery.kubeharness import FEEDER_SETTINGS, CloudSide
from cloudhub_delivery.memconn import MemConnection, MemEdge


@pytest.fixture
async def feeder_kube(kube_api: Any) -> AsyncIterator[kubeclient.KubeClient]:
    client = await kubeclient.KubeClient.from_kubeconfig(
        kube_api.kubeconfig, settings=FEEDER_SETTINGS
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def kube(kube_api: Any) -> AsyncIterator[kubeclient.KubeClient]:
    client = await kubeclient.KubeClient.from_kubeconfig(kube_api.kubeconfig)
    await install_crds(client, ("reliablesyncs",))
    try:
        yield client
    finally:
        await client.close()


async def sync_records(client: kubeclient.KubeClient, namespace: str) -> dict[str, str]:
    listed = await client.list(kubeclient.OBJECTSYNCS, namespace=namespace)
    return {
        o["metadata"]["name"]: (o.get("status") or {}).get("objectResourceVersion", "0")
        for o in listed["items"]
    }


# -- the recorder -------------------------------------------------------------------------


async def test_recorder_writes_and_removes_object_syncs(kube_api: Any, kube: Any) -> None:
    ns = await kube_api.make_namespace("osync")
    node = await kube_api.make_node("edge")
    rec = ObjectSyncRecorder(kube)
    fresh = ObjectSyncRecorder(kube)
    try:
        msg = down("update", node=node, namespace=ns, uid="u-1", rv="41")
        # first sight: the record is created with "0" (never acked)
        assert await rec.recorded_version(node, msg) == "0"
        await rec.flush(timeout=10)
        created = await kube.get(kubeclient.OBJECTSYNCS, f"{node}.u-1", namespace=ns)
        assert created["spec"] == {
            "objectAPIVersion": "v1",
            "objectKind": "ConfigMap",
            "objectName": "cm",
        }
        await rec.record_ack(node, msg)
        # this recorder knows at once what it recorded, before the API has it
        assert await rec.recorded_version(node, msg) == "41"
        await rec.flush(timeout=10)
        assert await sync_records(kube, ns) == {f"{node}.u-1": "41"}
        # the ack of a reply read at an older version does not lower the record
        late = down("response", node=node, namespace=ns, uid="u-1", rv="40", parent="q")
        await rec.record_ack(node, late)
        assert await rec.recorded_version(node, msg) == "41"
        await rec.flush(timeout=10)
        assert await sync_records(kube, ns) == {f"{node}.u-1": "41"}
        # a fresh recorder (a restarted cloudcore) reads it back from its cache
        assert await fresh.recorded_version(node, msg) == "41"
        await rec.record_ack(node, down("delete", node=node, namespace=ns, uid="u-1", rv=""))
        await rec.flush(timeout=10)
        assert await sync_records(kube, ns) == {}
        # deleting again is harmless
        await rec.record_ack(node, down("delete", node=node, namespace=ns, uid="u-1", rv=""))
        await rec.flush(timeout=10)
        assert rec.writer.retried == 0
    finally:
        await rec.close()
        await fresh.close()


async def test_recorder_memory_is_released_once_the_watch_shows_the_records(
    kube_api: Any, kube: Any
) -> None:
    # Versions this process wrote are held only until the record informer shows
    # them: records of objects that went away without an acked delete must not
    # stay in memory for the life of cloudcore.
    ns = await kube_api.make_namespace("osync")
    node = await kube_api.make_node("edge")
    rec = ObjectSyncRecorder(kube)
    try:
        for i in range(6):
            msg = down(
                "update", node=node, namespace=ns, uid=f"u-{i}", name=f"cm{i}", rv=str(10 + i)
            )
            await rec.record_ack(node, msg)
        assert rec.overlay_size() > 0
        await rec.flush(timeout=10)
        deadline = time.monotonic() + 10
        while rec.overlay_size():
            assert time.monotonic() < deadline, f"{rec.overlay_size()} versions still held"
            await asyncio.sleep(0.05)
        oldest = down("update", node=node, namespace=ns, uid="u-0", name="cm0", rv="10")
        assert await rec.recorded_version(node, oldest) == "10"
    finally:
        await rec.close()


async def test_recorder_uses_cluster_object_sync_for_null_namespace(
    kube_api: Any, kube: Any
) -> None:
    node = await kube_api.make_node("edge")
    rec = ObjectSyncRecorder(kube)
    try:
        msg = down(
            "update", rtype="node", namespace="null", name=node, node=node, uid="n-1", rv="7"
        )
        await rec.record_ack(node, msg)  # ack without a prior lookup: get-or-create
        await rec.flush(timeout=10)
        got = await kube.get(kubeclient.CLUSTEROBJECTSYNCS, f"{node}.n-1")
        assert got["spec"]["objectKind"] == "Node"
        assert got["status"]["objectResourceVersion"] == "7"
        await rec.record_ack(
            node,
            down("delete", rtype="node", namespace="null", name=node, node=node, uid="n-1", rv=""),
        )
        await rec.flush(timeout=10)
        with pytest.raises(kubeclient.NotFound):
            await kube.get(kubeclient.CLUSTEROBJECTSYNCS, f"{node}.n-1")
    finally:
        await rec.close()


async def test_recorder_ignores_what_is_not_recorded(kube: Any) -> None:
    rec = ObjectSyncRecorder(kube)
    twin = down("update", group="twin", rtype="device")
    assert await rec.recorded_version("n", twin) is None
    await rec.record_ack("n", twin)
    await rec.record_ack("n", down("update", rv=""))  # nothing to record
    assert len(rec.writer) == 0
    await rec.close()


# -- the synccontroller -------------------------------------------------------------------


async def test_synccontroller_resends_updates_deletes_and_drops_records_of_gone_nodes(
    kube_api: Any, kube: Any
) -> None:
    ns = await kube_api.make_namespace("sync")
    node = await kube_api.make_node("edge")
    cm = await kube.create(
        kubeclient.CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "live"}, "data": {"k": "1"}},
        namespace=ns,
    )
    uid, rv = cm["metadata"]["uid"], cm["metadata"]["resourceVersion"]

    async def record(name: str, obj_name: str, recorded: str, namespace: str = ns) -> None:
        await kube.create(
            kubeclient.OBJECTSYNCS,
            {
                "apiVersion": "reliablesyncs.kubeedge.io/v1alpha1",
                "kind": "ObjectSync",
                "metadata": {"name": name},
                "spec": {
                    "objectAPIVersion": "v1",
                    "objectKind": "ConfigMap",
                    "objectName": obj_name,
                },
            },
            namespace=namespace,
        )
        await kube.patch(
            kubeclient.OBJECTSYNCS,
            name,
            {"status": {"objectResourceVersion": recorded}},
            namespace=namespace,
            subresource="status",
        )

    await record(f"{node}.{uid}", "live", "0")  # behind: update
    await record(f"{node}.gone-uid", "vanished", "3")  # object missing: delete
    await record("no-such-node.x-uid", "live", "1")  # node gone: record removed
    await record(f"{node}.{uid}x", "live", "1")  # recreated (UID differs): delete
    ctx = Context()
    ctx.add_module("cloudhub", "cloudhub")
    sync = SyncController(kube, period=0.1)
    done = await sync.reconcile_once(ctx)
    assert done == {"updates": 1, "deletes": 2, "records_removed": 1}
    sent: list[Message] = []
    while ctx.queue_depth("cloudhub"):
        sent.append(await ctx.receive("cloudhub"))
    by_op = {(m.operation, m.resource, (m.content["metadata"]["uid"])) for m in sent}
    assert by_op == {
        ("update", f"node/{node}/{ns}/configmap/live", uid),
        ("delete", f"node/{node}/{ns}/configmap/vanished", "gone-uid"),
        ("delete", f"node/{node}/{ns}/configmap/live", f"{uid}x"),
    }
    update = next(m for m in sent if m.operation == "update")
    assert update.resource_version == rv
    assert update.content["data"] == {"k": "1"}
    assert update.content["kind"] == "ConfigMap"
    assert "no-such-node.x-uid" not in await sync_records(kube, ns)
    with pytest.raises(ValueError):
        SyncController(kube, period=0)


# -- the delivery test --------------------------------------------------------------


class Cluster:
    """Random configmap changes in one namespace, through kubeclient."""

    def __init__(self, client: kubeclient.KubeClient, namespace: str, seed: int) -> None:
        self.client = client
        self.ns = namespace
        self.rng = random.Random(seed)
        self.names: set[str] = set()
        self.serial = 0

    async def create(self) -> None:
        self.serial += 1
        name = f"cm-{self.serial:04d}"
        await self.client.create(
            kubeclient.CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": {"v": "0"},
            },
            namespace=self.ns,
        )
        self.names.add(name)

    async def change(self, count: int, *, keep: frozenset[str] = frozenset()) -> None:
        """``count`` random creates, deletes and updates; ``keep`` is left alone."""
        for _ in range(count):
            roll = self.rng.random()
            candidates = sorted(self.names - keep)
            if not candidates or (roll < 0.15 and len(self.names) < 60):
                await self.create()
            elif roll < 0.22 and len(candidates) > 5:
                name = self.rng.choice(candidates)
                await self.client.delete(kubeclient.CONFIGMAPS, name, namespace=self.ns)
                self.names.discard(name)
            else:
                name = self.rng.choice(candidates)
                await self.client.patch(
                    kubeclient.CONFIGMAPS,
                    name,
                    {"data": {"v": str(self.rng.randrange(10**6))}},
                    namespace=self.ns,
                )

    async def state(self) -> dict[str, tuple[str, int, Any]]:
        listed = await self.client.list(kubeclient.CONFIGMAPS, namespace=self.ns)
        return {
            f"{self.ns}/configmap/{o['metadata']['name']}": (
                o["metadata"]["uid"],
                int(o["metadata"]["resourceVersion"]),
                o.get("data"),
            )
            for o in listed["items"]
        }


def edge_state(edge: MemEdge) -> dict[str, tuple[str, int, Any]]:
    return {res: (a.uid, a.rv, a.content.get("data")) for res, a in edge.store.items()}


async def converge(edge: MemEdge, cluster: Cluster, *, timeout: float = 60.0) -> None:
    target: dict[str, tuple[str, int, Any]] = {}

    async def check() -> bool:
        nonlocal target
        target = await cluster.state()
        return edge_state(edge) == target

    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            missing = {k: v for k, v in target.items() if edge_state(edge).get(k) != v}
            extra = set(edge_state(edge)) - set(target)
            raise AssertionError(f"edge did not converge: differs {missing}, extra {extra}")
        await asyncio.sleep(0.1)


def assert_applied_in_order(edge: MemEdge) -> None:
    for uid, versions in edge.history.items():
        assert versions == sorted(set(versions)), f"{uid} applied out of order: {versions}"


async def test_500_changes_while_disconnected_and_across_a_restart(
    kube_api: Any, kube: Any, feeder_kube: Any
) -> None:
    ns = await kube_api.make_namespace("deliv")
    node = await kube_api.make_node("edge", labels={"node-role.kubernetes.io/edge": ""})
    cluster = Cluster(kube, ns, seed=4)
    for _ in range(20):
        await cluster.create()

    cloud = CloudSide(kube, feeder_kube, node=node, namespace=ns)
    await cloud.start()
    conn = MemConnection(node)
    edge = MemEdge(cloud.manager, conn)
    edge.start()
    assert await cloud.manager.on_connect(conn)
    await converge(edge, cluster)

    # 1. the node goes away; 500 changes happen; it comes back
    await cloud.manager.on_disconnect(conn, "network down")
    await edge.stop()
    await cluster.change(500)
    conn = MemConnection(node)
    edge.conn = conn
    edge.start()
    assert await cloud.manager.on_connect(conn)
    await converge(edge, cluster)
    assert_applied_in_order(edge)

    # 2. cloudcore restarts; 500 more changes meanwhile; the node reconnects
    await cloud.stop()
    await edge.stop()
    keep = frozenset(sorted(cluster.names)[:5])
    had = [edge.store[f"{ns}/configmap/{name}"].uid for name in keep]
    sends_before = {uid: len(edge.history[uid]) for uid in had}
    await cluster.change(500, keep=keep)
    cloud = CloudSide(kube, feeder_kube, node=node, namespace=ns)
    await cloud.start()
    conn = MemConnection(node)
    edge = MemEdge(cloud.manager, conn, store=edge.store, history=edge.history)
    edge.start()
    assert await cloud.manager.on_connect(conn)
    try:
        await converge(edge, cluster)
        assert_applied_in_order(edge)
        # what the node already had (per ObjectSync) was not sent again
        assert {uid: len(edge.history[uid]) for uid in had} == sends_before
        # the records end up matching: one per live object, at its version
        state = await cluster.state()
        expected = {f"{node}.{uid}": str(rv) for uid, rv, _ in state.values()}
        await wait_until_records(kube, ns, expected)
    finally:
        await edge.stop()
        await cloud.stop()


async def wait_until_records(client: Any, ns: str, expected: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while (got := await sync_records(client, ns)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"records {got} != {expected}")
        await asyncio.sleep(0.1)


async def test_synccontroller_keeps_running_while_the_api_server_is_down() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = kubeclient.KubeClient(
        kubeclient.ClusterConfig(server=f"http://127.0.0.1:{port}"),
        settings=kubeclient.ClientSettings(retry=kubeclient.RetrySettings(backoffs=())),
    )
    ctx = Context()
    ctx.add_module("cloudhub", "cloudhub")
    sync = SyncController(client, period=0.05)
    task = asyncio.create_task(sync.start(ctx))
    try:
        deadline = time.monotonic() + 10
        while sync.stats["errors"] < 2:
            assert not task.done(), "the module must not crash on API errors"
            assert time.monotonic() < deadline, "no reconcile round was attempted"
            await asyncio.sleep(0.02)
        assert ctx.queue_depth("cloudhub") == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
