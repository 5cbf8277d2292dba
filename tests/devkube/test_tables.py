"""Server-side printing: Table answers for clients that ask for them (kubectl get)."""

from __future__ import annotations

import asyncio

import pytest
from devkube_raw import Raw, pod

from devkube.tables import human_duration, wants_table

NS = "/api/v1/namespaces/default"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (0, "0s"), (119, "119s"), (125, "2m5s"), (600, "10m"),
    (3 * 3600 + 60, "3h1m"), (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"), (400 * 86400, "400d"),
    (3 * 365 * 86400, "3y"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_wants_table() -> None:
    assert wants_table(TABLE)
    assert not wants_table("application/json")
    assert not wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io")


async def test_list_and_get_as_table(raw: Raw) -> None:
    await raw.post(f"{NS}/pods", pod("p", nodeName="n1"))
    await raw.patch(f"{NS}/pods/p/status", {"status": {"phase": "Running", "podIP": "10.1.1.1",
                                                       "containerStatuses": [
                                                           {"name": "c", "ready": True,
                                                            "restartCount": 2}]}})
    async with raw.session.get(raw.base + f"{NS}/pods", headers={"Accept": TABLE}) as resp:
        table = await resp.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node",
                     "Nominated Node", "Readiness Gates"]
    row = table["rows"][0]
    assert row["cells"][:4] == ["p", "1/1", "Running", 2]
    assert row["cells"][5:] == ["10.1.1.1", "n1", "<none>", "<none>"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert table["metadata"]["resourceVersion"]
    async with raw.session.get(raw.base + f"{NS}/pods/p", headers={"Accept": TABLE},
                               params={"includeObject": "Object"}) as resp:
        table = await resp.json()
    assert table["rows"][0]["object"]["spec"]["nodeName"] == "n1"


async def test_watch_as_table(raw: Raw) -> None:
    _, listed = await raw.get(f"{NS}/configmaps")
    events = []

    async def watch() -> None:
        async with raw.session.get(raw.base + f"{NS}/configmaps", headers={"Accept": TABLE},
                                   params={"watch": "1", "resourceVersion":
                                           listed["metadata"]["resourceVersion"]}) as resp:
            async for line in resp.content:
                import json

                events.append(json.loads(line))
                if len(events) == 2:
                    return

    task = asyncio.create_task(watch())
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "a"}, "data": {"x": "1"}})
    await raw.patch(f"{NS}/configmaps/a", {"data": {"y": "2"}})
    async with asyncio.timeout(10):
        await task
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert [c["name"] for c in events[0]["object"]["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert events[1]["object"]["columnDefinitions"] is None
    assert [e["object"]["rows"][0]["cells"][:2] for e in events] == [["a", 1], ["a", 2]]


async def test_node_columns(raw: Raw) -> None:
    await raw.post("/api/v1/nodes", {"metadata": {"name": "edge-1", "labels": {
        "node-role.kubernetes.io/edge": "", "node-role.kubernetes.io/agent": ""}}})
    await raw.patch("/api/v1/nodes/edge-1/status", {"status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
        "nodeInfo": {"kubeletVersion": "v1.31.0-kubeedge-v1.23.0"}}})
    async with raw.session.get(raw.base + "/api/v1/nodes/edge-1",
                               headers={"Accept": TABLE}) as resp:
        table = await resp.json()
    cells = table["rows"][0]["cells"]
    assert cells[:2] == ["edge-1", "Ready"] and cells[2] == "agent,edge"
    assert cells[4] == "v1.31.0-kubeedge-v1.23.0" and cells[5:7] == ["10.0.0.7", "<none>"]
