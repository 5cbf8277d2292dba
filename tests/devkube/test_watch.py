"""List/watch semantics: collection RV, resume, 410 Expired, bookmarks, timeouts, selectors."""

from __future__ import annotations

import asyncio
from typing import Any

from devkube_raw import Raw, pod

from devkube import DevKube

NS = "/api/v1/namespaces/default"


async def collect(raw: Raw, path: str, params: dict[str, str], count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        async for ev in raw.watch(path, params):
            events.append(ev)
            if len(events) == count:
                break
    return events


async def test_watch_from_list_rv_sees_changes_in_order(raw: Raw) -> None:
    _, listed = await raw.get(f"{NS}/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    task = asyncio.create_task(collect(raw, f"{NS}/configmaps", {"resourceVersion": rv}, 3))
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "a"}})
    await raw.patch(f"{NS}/configmaps/a", {"data": {"x": "1"}})
    await raw.delete(f"{NS}/configmaps/a")
    events = await task
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # Resuming after the first event replays exactly the rest.
    again = await collect(raw, f"{NS}/configmaps", {"resourceVersion": str(rvs[0])}, 2)
    assert [e["type"] for e in again] == ["MODIFIED", "DELETED"]


async def test_watch_without_rv_starts_with_current_state(raw: Raw) -> None:
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "a"}})
    events = await collect(raw, f"{NS}/configmaps", {}, 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "a"


async def test_compacted_rv_answers_410_error_event(kube: DevKube, raw: Raw) -> None:
    _, listed = await raw.get(f"{NS}/configmaps")
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "a"}})
    kube.compact()
    events = await collect(raw, f"{NS}/configmaps",
                           {"resourceVersion": listed["metadata"]["resourceVersion"]}, 1)
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith("too old resource version")


async def test_bookmarks_and_timeout(raw: Raw) -> None:
    _, listed = await raw.get(f"{NS}/pods")
    events = []
    async with asyncio.timeout(10):
        async for ev in raw.watch(f"{NS}/pods", {
            "resourceVersion": listed["metadata"]["resourceVersion"],
            "allowWatchBookmarks": "true", "timeoutSeconds": "1"}):
            events.append(ev)
    # The stream ended by itself after timeoutSeconds, with bookmarks (interval 0.2 s) in it.
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    assert events[0]["object"]["kind"] == "Pod"
    assert events[0]["object"]["metadata"]["resourceVersion"] == listed["metadata"][
        "resourceVersion"]


async def test_field_selector_transitions(raw: Raw) -> None:
    await raw.post("/api/v1/nodes", {"metadata": {"name": "edge-1"}})
    _, listed = await raw.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName=edge-1"})
    assert listed["items"] == []
    task = asyncio.create_task(collect(raw, "/api/v1/pods", {
        "fieldSelector": "spec.nodeName=edge-1",
        "resourceVersion": listed["metadata"]["resourceVersion"]}, 2))
    await raw.post(f"{NS}/pods", pod("unbound"))
    await raw.post(f"{NS}/pods", pod("p"))
    status, body = await raw.post(f"{NS}/pods/p/binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "edge-1"}})
    assert status == 201 and body["status"] == "Success"
    await raw.delete(f"{NS}/pods/p", {"gracePeriodSeconds": 0})
    events = await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "p"), ("DELETED", "p")]


async def test_label_selectors(raw: Raw) -> None:
    for name, labels in (("a", {"app": "x", "tier": "fe"}), ("b", {"app": "y"}), ("c", {})):
        await raw.post(f"{NS}/configmaps", {"metadata": {"name": name, "labels": labels}})

    async def names(selector: str) -> list[str]:
        status, body = await raw.get(f"{NS}/configmaps", params={"labelSelector": selector})
        assert status == 200, body
        return [i["metadata"]["name"] for i in body["items"]]

    assert await names("app=x") == ["a"]
    assert await names("app==x") == ["a"]
    assert await names("app!=x") == ["b", "c"]
    assert await names("app in (x,y)") == ["a", "b"]
    assert await names("app notin (x)") == ["b", "c"]
    assert await names("app") == ["a", "b"]
    assert await names("!app") == ["c"]
    assert await names("app,tier=fe") == ["a"]
    status, body = await raw.get(f"{NS}/configmaps", params={"labelSelector": "a in (x"})
    assert status == 400 and body["reason"] == "BadRequest"
    status, body = await raw.get(f"{NS}/configmaps", params={"fieldSelector": "data.x=1"})
    assert status == 400 and "field label not supported" in body["message"]


async def test_limit_and_continue(raw: Raw) -> None:
    for i in range(5):
        await raw.post(f"{NS}/configmaps", {"metadata": {"name": f"cm{i}"}})
    seen: list[str] = []
    params = {"limit": "2"}
    rvs = set()
    while True:
        _, page = await raw.get(f"{NS}/configmaps", params=params)
        seen += [i["metadata"]["name"] for i in page["items"]]
        rvs.add(page["metadata"]["resourceVersion"])
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 5 - len(seen)
        params = {"limit": "2", "continue": token}
    assert seen == [f"cm{i}" for i in range(5)]
    assert len(rvs) == 1


async def test_send_initial_events_ends_with_marked_bookmark(raw: Raw) -> None:
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "a"}})
    events = await collect(raw, f"{NS}/configmaps", {
        "sendInitialEvents": "true", "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan"}, 2)
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


async def test_legacy_watch_prefix_and_http_compaction(raw: Raw) -> None:
    _, created = await raw.post(f"{NS}/configmaps", {"metadata": {"name": "a"}})
    rv = created["metadata"]["resourceVersion"]
    task = asyncio.create_task(collect(raw, "/api/v1/watch/namespaces/default/configmaps/a",
                                       {"resourceVersion": rv}, 1))
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "b"}})
    await raw.patch(f"{NS}/configmaps/a", {"data": {"k": "v"}})
    events = await task
    assert events[0]["type"] == "MODIFIED" and events[0]["object"]["metadata"]["name"] == "a"
    status, body = await raw.post("/devkube/compact", None)
    assert status == 200 and body["compacted"] == body["resourceVersion"]
    events = await collect(raw, f"{NS}/configmaps", {"resourceVersion": rv}, 1)
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


async def test_pages_are_a_consistent_snapshot(raw: Raw) -> None:
    for i in range(5):
        await raw.post(f"{NS}/configmaps", {"metadata": {"name": f"cm{i}"}, "data": {"v": "0"}})
    _, first = await raw.get(f"{NS}/configmaps", params={"limit": "2"})
    rv = first["metadata"]["resourceVersion"]
    # Changes after the first page do not show in the later ones.
    await raw.delete(f"{NS}/configmaps/cm3")
    await raw.patch(f"{NS}/configmaps/cm4", {"data": {"v": "1"}})
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "cm5"}})
    await raw.delete(f"{NS}/configmaps/cm0")
    items = list(first["items"])
    params = {"limit": "2", "continue": first["metadata"]["continue"]}
    while True:
        _, page = await raw.get(f"{NS}/configmaps", params=params)
        assert page["metadata"]["resourceVersion"] == rv
        items += page["items"]
        if not page["metadata"].get("continue"):
            break
        params["continue"] = page["metadata"]["continue"]
    assert [(i["metadata"]["name"], i["data"]["v"]) for i in items] == [
        (f"cm{i}", "0") for i in range(5)]
    # The same snapshot, asked for directly.
    _, exact = await raw.get(f"{NS}/configmaps",
                             params={"resourceVersion": rv, "resourceVersionMatch": "Exact"})
    assert [i["metadata"]["name"] for i in exact["items"]] == [f"cm{i}" for i in range(5)]
    _, now = await raw.get(f"{NS}/configmaps")
    assert [i["metadata"]["name"] for i in now["items"]] == ["cm1", "cm2", "cm4", "cm5"]
