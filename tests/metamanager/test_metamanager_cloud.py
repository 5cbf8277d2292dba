"""metamanager with objects from the cloud: store, ack exactly as KubeEdge, forward.

The cloud side replays real KubeEdge frames from the captures; the acks our
edge sends back must have the shape of the acks KubeEdge's edge sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beehive import codec
from beehive.message import Message
from edgecore.metamanager.store import MetaStore
from fixtures.minicloud import (
    EdgeRunner,
    MiniCloud,
    Probe,
    capture_lines,
    edge_settings,
    shape,
    wait_until,
)


def _cloud_pushes(name: str) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every parentless cloud->edge object message and the edge's captured ack (or None)."""
    lines = capture_lines(name)
    acks = {
        line["frame"]["header"].get("parent_msg_id"): line["frame"]
        for line in lines
        if line["dir"] == "edge->cloud" and line["frame"]["route"].get("operation") == "response"
    }
    out = []
    for line in lines:
        f = line["frame"]
        if (
            line["dir"] == "cloud->edge"
            and not f["header"].get("parent_msg_id")
            and f["route"].get("group") == "resource"
        ):
            out.append((f, acks.get(f["header"]["msg_id"])))
    return out


async def _replay(cloud: MiniCloud, pushes: list[tuple[dict[str, Any], Any]]) -> None:
    for frame, captured_ack in pushes:
        msg = codec.decode_obj(frame)
        start = len(cloud.received)
        await cloud.send(msg)
        ack = await cloud.wait_message(lambda m, i=msg.msg_id: m.parent_id == i, start=start)
        assert captured_ack is not None
        assert shape(codec.to_obj(ack)) == shape(captured_ack), frame["route"]


async def test_pod_capture_replay_acks_stores_and_forwards(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    edged = Probe("edged", "edged")
    db = tmp_path / "edgecore.db"
    pushes = _cloud_pushes("kubeedge-1.23-ws-pods.jsonl")
    async with EdgeRunner(
        edge_settings(minicloud, tmp_path, node="capture-edge"), db, probes=[edged]
    ) as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        # up to the pod's first insert: the pod is stored
        first_pod = next(
            i for i, (f, _) in enumerate(pushes) if f["route"]["resource"] == "default/pod/cap-pod"
        )
        await _replay(minicloud, pushes[: first_pod + 1])
        stored = await edge.meta.store.get("default/pod/cap-pod")
        assert stored == pushes[first_pod][0]["content"]
        await edge.meta.store.put("default/podpatch/cap-pod", "podpatch", {"x": 1})
        await _replay(minicloud, pushes[first_pod + 1 :])
        await wait_until(
            lambda: (
                len(edged.messages)
                == sum(
                    f["route"]["resource"].split("/")[1] in ("pod", "configmap", "secret")
                    for f, _ in pushes
                )
            )
        )
        store = edge.meta.store
        # deleted at the end of the capture: pod (and its podpatch), configmap, secret
        assert await store.get("default/pod/cap-pod") is None
        assert await store.get("default/podpatch/cap-pod") is None
        assert await store.get("default/configmap/cap-cm") is None
        # node updates are stored (the last one wins) and not forwarded
        node = await store.get("null/node/capture-edge")
        last_node = [f for f, _ in pushes if f["route"]["resource"] == "null/node/capture-edge"][-1]
        assert node == last_node["content"]
    # edged got pod/configmap/secret messages unchanged and in order
    forwarded = [codec.to_obj(m) for m in edged.messages]
    expected = [
        f
        for f, _ in pushes
        if f["route"]["resource"].split("/")[1] in ("pod", "configmap", "secret")
    ]
    assert forwarded == expected


async def test_device_capture_acks_as_kubeedge(minicloud: MiniCloud, tmp_path: Path) -> None:
    twin = Probe("twin", "twin")
    pushes = _cloud_pushes("kubeedge-1.23-ws-devices.jsonl")
    pushes = [p for p in pushes if p[0]["route"]["source"] == "devicecontroller"]
    assert {p[1]["route"]["source"] for p in pushes} == {"meta", "devicecontroller"}
    async with EdgeRunner(
        edge_settings(minicloud, tmp_path, node="capture-dev"),
        tmp_path / "db.sqlite",
        probes=[twin],
    ) as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        await _replay(minicloud, pushes)
        await wait_until(lambda: len(twin.messages) == len(pushes))
    assert {(m.source, m.group) for m in twin.messages} == {("meta", "twin")}


async def test_delete_of_an_older_pod_uid_keeps_the_new_pod(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    edged = Probe("edged", "edged")
    async with EdgeRunner(
        edge_settings(minicloud, tmp_path), tmp_path / "db.sqlite", probes=[edged]
    ) as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "new"}}
        insert = Message.new(
            source="edgecontroller",
            group="resource",
            operation="insert",
            resource="ns/pod/p",
            content=pod,
            resource_version="2",
        )
        stale = Message.new(
            source="edgecontroller",
            group="resource",
            operation="delete",
            resource="ns/pod/p",
            content={"metadata": {"name": "p", "namespace": "ns", "uid": "old"}},
        )
        for msg in (insert, stale):
            await minicloud.send(msg)
            await minicloud.wait_message(lambda m, i=msg.msg_id: m.parent_id == i)
        assert await edge.meta.store.get("ns/pod/p") == pod
        # edged still hears of the old pod's delete (by its uid), so that a pod
        # deleted and created again while the edge was away does not run twice.
        await wait_until(lambda: len(edged.messages) == 2)
        assert [m.operation for m in edged.messages] == ["insert", "delete"]
        assert edged.messages[1].content["metadata"]["uid"] == "old"


async def test_store_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    store = await MetaStore.open(db)
    await store.put("default/configmap/a", "configmap", {"data": {"k": "v"}})
    await store.close()
    assert db.stat().st_mode & 0o077 == 0  # secrets inside: owner only
    store = await MetaStore.open(db)
    assert await store.get("default/configmap/a") == {"data": {"k": "v"}}
    assert await store.list_type("configmap") == [("default/configmap/a", {"data": {"k": "v"}})]
    assert await store.delete(["default/configmap/a", "missing"]) == 1
    await store.close()
