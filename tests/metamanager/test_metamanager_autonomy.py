"""Edge autonomy: the store answers while the cloud is away, and survives crashes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from beehive.message import Message
from edgecore.metaclient import MetaClient, MetaNotFound, MetaUnavailable
from fixtures.minicloud import EdgeRunner, MiniCloud, Probe, edge_settings, wait_until


def _answering_cloud(cloud: MiniCloud) -> None:
    """Answer every edge request like edgecontroller, echoing an object."""

    def responder(m: Message) -> Message | None:
        if m.group != "meta":
            return None
        kind = m.resource.split("/")[1]
        if kind in ("configmap", "secret"):
            content: Any = {"kind": kind, "metadata": {"name": m.resource.split("/")[2]}}
        elif kind in ("nodepatch", "podpatch"):
            content = {"Object": {"patched": json.loads(m.content)}, "Err": None}
        elif isinstance(m.content, dict):
            content = {"Object": m.content, "Err": None}
        else:
            content = {"Object": {"metadata": {"name": m.resource.split("/")[2]}}, "Err": None}
        return Message.new(
            source="edgecontroller",
            group="resource",
            operation="response",
            resource=m.resource,
            content=content,
            parent_msg_id=m.msg_id,
        )

    cloud.responder = responder


async def test_offline_answers_from_the_store_and_keeps_the_latest_patch(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    _answering_cloud(minicloud)
    lease = {"metadata": {"name": "edge-1", "namespace": "kube-node-lease"}, "spec": {}}
    async with EdgeRunner(edge_settings(minicloud, tmp_path), tmp_path / "e.db") as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        client = MetaClient(edge.ctx, timeout=5)
        cm = await client.get_configmap("default", "cm")
        await client.create_lease(lease)
        await client.get_node("edge-1")

        await minicloud.stop_ws()
        await minicloud.drop()
        await wait_until(lambda: not edge.meta.cloud_connected)
        # queries: from the store
        assert await client.get_configmap("default", "cm") == cm
        assert (await client.get_lease("edge-1")) == lease
        assert (await client.get_node("edge-1"))["metadata"]["name"] == "edge-1"
        with pytest.raises(MetaUnavailable) as info:
            await client.get_secret("default", "never-seen")
        assert not info.value.queued
        # writes: refused clearly; status patches kept, the latest wins
        with pytest.raises(MetaUnavailable):
            await client.update_lease(lease)
        for phase in ("Pending", "Running"):
            with pytest.raises(MetaUnavailable) as info:
                await client.patch_pod_status("default", "p", {"status": {"phase": phase}})
            assert info.value.queued
        with pytest.raises(MetaUnavailable):
            await client.patch_node_status("edge-1", {"status": {"x": 1}})

        start = len(minicloud.received)
        await minicloud.start_ws()
        await wait_until(lambda: edge.meta.cloud_connected, timeout=5)
        await minicloud.wait_for(
            lambda: sum(m.operation == "patch" for m in minicloud.received[start:]) == 2
        )
        patches = [m for m in minicloud.received[start:] if m.operation == "patch"]
        assert sorted(m.resource for m in patches) == [
            "default/podpatch/p",
            "null/nodepatch/edge-1",
        ]
        pod_patch = next(m for m in patches if m.resource == "default/podpatch/p")
        assert json.loads(pod_patch.content) == {"status": {"phase": "Running"}}
        assert pod_patch.source == "edged" and pod_patch.group == "meta"
        await wait_until(lambda: _pending(tmp_path / "e.db") == 0)


def _pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from pending_patch").fetchone()[0])


async def test_restart_with_the_cloud_down_answers_from_the_store(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    _answering_cloud(minicloud)
    db = tmp_path / "edge.db"
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u1"}}
    async with EdgeRunner(
        edge_settings(minicloud, tmp_path), db, probes=[Probe("edged", "edged")]
    ) as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        msg = Message.new(
            source="edgecontroller",
            group="resource",
            operation="insert",
            resource="default/pod/p",
            content=pod,
            resource_version="3",
        )
        await minicloud.send(msg)
        await minicloud.wait_message(lambda m: m.parent_id == msg.msg_id)
        await MetaClient(edge.ctx, timeout=5).get_configmap("default", "cm")
    # the cloud goes away; edgecore starts again (new context, same database)
    await minicloud.stop_ws()
    async with EdgeRunner(edge_settings(minicloud, tmp_path, token=""), db) as edge:
        client = MetaClient(edge.ctx, timeout=5)
        assert await client.list_pods() == [pod]
        assert (await client.get_configmap("default", "cm"))["metadata"]["name"] == "cm"
        with pytest.raises(MetaUnavailable):
            await client.get_configmap("default", "other")
        with pytest.raises(MetaNotFound):
            await client._call("query", "default/pod/none")
        assert not edge.hub.connected.is_set()


WRITER = textwrap.dedent(
    """
    import sys
    from edgecore.metamanager.store import MetaStore
    store = MetaStore.open_sync(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        # one transaction per object; the value is big enough to span pages
        store.put_sync(f"default/configmap/cm{i % 50}", "configmap",
                       {"n": i, "data": {"blob": "x" * 20000, "n": str(i)}})
    """
)


@pytest.mark.parametrize("run", range(3))
async def test_killed_writer_leaves_a_consistent_store(tmp_path: Path, run: int) -> None:
    db = tmp_path / "crash.db"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(db), env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"

    def rows() -> int:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                return int(conn.execute("select count(*) from meta").fetchone()[0])
        except sqlite3.Error:
            return 0

    await wait_until(lambda: rows() >= 10 + run * 10)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        for key, value in conn.execute("select key, value from meta"):
            obj = json.loads(value)  # every row is a whole object
            assert obj["data"]["n"] == str(obj["n"]) and len(obj["data"]["blob"]) == 20000
            assert key == f"default/configmap/cm{obj['n'] % 50}"


async def test_offline_service_account_token_only_while_valid(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    import datetime as dt

    expiry = {"value": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)}

    def responder(m: Message) -> Message | None:
        if m.group != "meta":
            return None
        stamp = expiry["value"].strftime("%Y-%m-%dT%H:%M:%SZ")
        content = {"kind": "TokenRequest", "status": {"token": "t", "expirationTimestamp": stamp}}
        return Message.new(
            source="edgecontroller",
            group="resource",
            operation="response",
            resource=m.resource,
            content=content,
            parent_msg_id=m.msg_id,
        )

    minicloud.responder = responder
    request = {"spec": {"expirationSeconds": 3600}}
    async with EdgeRunner(edge_settings(minicloud, tmp_path), tmp_path / "e.db") as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        client = MetaClient(edge.ctx, timeout=5)
        await client.get_service_account_token("default", "sa", request)
        expiry["value"] = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        await client.get_service_account_token("default", "sa2", request)
        await minicloud.stop_ws()
        await minicloud.drop()
        await wait_until(lambda: not edge.meta.cloud_connected)
        tok = await client.get_service_account_token("default", "sa", request)
        assert tok["status"]["token"] == "t"
        with pytest.raises(MetaUnavailable):
            await client.get_service_account_token("default", "sa2", request)
