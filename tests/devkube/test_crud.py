"""CRUD semantics over raw HTTP: what kube-apiserver answers for the same requests."""

from __future__ import annotations

from devkube_raw import Raw, pod

NS = "/api/v1/namespaces/default"


async def test_discovery_documents(raw: Raw) -> None:
    status, body = await raw.get("/api")
    assert status == 200 and body["kind"] == "APIVersions" and body["versions"] == ["v1"]
    status, body = await raw.get("/api/v1")
    names = {r["name"] for r in body["resources"]}
    assert {"pods", "pods/status", "pods/binding", "nodes", "nodes/status", "configmaps",
            "secrets", "serviceaccounts", "serviceaccounts/token", "services", "endpoints",
            "events", "namespaces"} <= names
    status, body = await raw.get("/apis")
    groups = {g["name"] for g in body["groups"]}
    assert {"coordination.k8s.io", "apiextensions.k8s.io"} <= groups
    status, body = await raw.get("/apis/coordination.k8s.io")
    assert status == 200 and body["kind"] == "APIGroup"
    assert body["preferredVersion"]["groupVersion"] == "coordination.k8s.io/v1"
    status, body = await raw.get("/apis/coordination.k8s.io/v1")
    assert [r["name"] for r in body["resources"]] == ["leases"]
    for path in ("/healthz", "/readyz", "/livez"):
        assert (await raw.get(path)) == (200, "ok")
    status, body = await raw.get("/version")
    assert body["major"] == "1"


async def test_create_get_defaults_and_conflict(raw: Raw) -> None:
    status, created = await raw.post(f"{NS}/pods", pod("p1"))
    assert status == 201
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert created["status"]["phase"] == "Pending"
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    status, got = await raw.get(f"{NS}/pods/p1")
    assert got == created
    status, body = await raw.post(f"{NS}/pods", pod("p1"))
    assert status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'pods "p1" already exists'
    assert body["details"] == {"name": "p1", "kind": "pods"}


async def test_generate_name(raw: Raw) -> None:
    status, body = await raw.post(f"{NS}/configmaps", {"metadata": {"generateName": "cm-"}})
    assert status == 201
    assert body["metadata"]["name"].startswith("cm-") and len(body["metadata"]["name"]) == 8


async def test_update_with_stale_resource_version_conflicts(raw: Raw) -> None:
    _, cm = await raw.post(f"{NS}/configmaps", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    cm["data"]["a"] = "2"
    status, updated = await raw.put(f"{NS}/configmaps/c", cm)
    assert status == 200 and updated["data"]["a"] == "2"
    assert int(updated["metadata"]["resourceVersion"]) > int(cm["metadata"]["resourceVersion"])
    cm["data"]["a"] = "3"  # still carries the old resourceVersion
    status, body = await raw.put(f"{NS}/configmaps/c", cm)
    assert status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    # A no-op update does not bump the resourceVersion.
    status, same = await raw.put(f"{NS}/configmaps/c", updated)
    assert same["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]


async def test_status_subresource_separates_spec_and_status(raw: Raw) -> None:
    await raw.post("/api/v1/nodes", {"metadata": {"name": "n1"}, "spec": {}})
    status, node = await raw.patch(
        "/api/v1/nodes/n1/status",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        kind="strategic",
    )
    assert status == 200 and node["status"]["conditions"][0]["status"] == "True"
    # The main resource ignores status changes; /status ignores everything but status.
    _, node = await raw.patch("/api/v1/nodes/n1", {"status": {"phase": "x"},
                                                   "spec": {"unschedulable": True}})
    assert node["spec"]["unschedulable"] is True and "phase" not in node["status"]
    _, node = await raw.patch("/api/v1/nodes/n1/status", {"spec": {"unschedulable": False},
                                                          "status": {"phase": "y"}})
    assert node["spec"]["unschedulable"] is True and node["status"]["phase"] == "y"


async def test_leases_and_events(raw: Raw) -> None:
    lease = {"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1",
                                                 "leaseDurationSeconds": 40}}
    status, body = await raw.post(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
    assert status == 201 and body["apiVersion"] == "coordination.k8s.io/v1"
    status, body = await raw.get(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/missing")
    assert status == 404
    assert body["message"] == 'leases.coordination.k8s.io "missing" not found'
    assert body["details"] == {"name": "missing", "group": "coordination.k8s.io", "kind": "leases"}
    status, body = await raw.post(f"{NS}/events", {
        "metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Started", "type": "Normal"})
    assert status == 201
    status, body = await raw.get(f"{NS}/events", params={"fieldSelector": "reason=Started"})
    assert [e["metadata"]["name"] for e in body["items"]] == ["e1"]


async def test_secrets_string_data_and_types(raw: Raw) -> None:
    status, body = await raw.post(f"{NS}/secrets", {"metadata": {"name": "s"},
                                                   "stringData": {"k": "v"}})
    assert status == 201 and body["data"] == {"k": "dg=="} and body["type"] == "Opaque"
    assert "stringData" not in body


async def test_namespace_must_exist(raw: Raw) -> None:
    status, body = await raw.post("/api/v1/namespaces/nope/configmaps", {"metadata": {"name": "c"}})
    assert status == 404 and body["message"] == 'namespaces "nope" not found'


async def test_unauthenticated_requests_get_401(kube, raw: Raw) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eA=="}):
            async with s.get(kube.url + "/api/v1/pods", headers=headers) as resp:
                body = await resp.json()
                assert resp.status == 401 and body["reason"] == "Unauthorized"
        async with s.get(kube.url + "/healthz") as resp:
            assert resp.status == 200


async def test_dry_run_writes_nothing(raw: Raw) -> None:
    status, body = await raw.post(f"{NS}/configmaps", {"metadata": {"name": "d"}},
                                  params={"dryRun": "All"})
    assert status == 201 and body["metadata"]["name"] == "d"
    assert (await raw.get(f"{NS}/configmaps/d"))[0] == 404
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "d"}, "data": {"a": "1"}})
    _, body = await raw.patch(f"{NS}/configmaps/d", {"data": {"a": "2"}},
                              params={"dryRun": "All"})
    assert body["data"] == {"a": "2"}
    assert (await raw.get(f"{NS}/configmaps/d"))[1]["data"] == {"a": "1"}
    await raw.delete(f"{NS}/configmaps/d", params={"dryRun": "All"})
    assert (await raw.get(f"{NS}/configmaps/d"))[0] == 200


async def test_workloads_and_rbac_are_stored(raw: Raw) -> None:
    base = "/apis/apps/v1/namespaces/default/deployments"
    dep = {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "a", "image": "x:1"},
                                             {"name": "b", "image": "y:1"}]}}}}
    status, created = await raw.post(base, dep)
    assert status == 201 and created["metadata"]["generation"] == 1
    _, patched = await raw.patch(f"{base}/web", {"spec": {"template": {"spec": {
        "containers": [{"name": "b", "image": "y:2"}]}}}}, kind="strategic")
    assert [c["image"] for c in patched["spec"]["template"]["spec"]["containers"]] == [
        "x:1", "y:2"]
    assert patched["metadata"]["generation"] == 2
    async with raw.session.get(raw.base + base, headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as resp:
        table = await resp.json()
    assert table["rows"][0]["cells"][:4] == ["web", "0/2", 0, 0]  # no controller runs it
    rbac = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    status, _ = await raw.post(rbac, {"metadata": {"name": "reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
    assert status == 201
    assert (await raw.get(f"{rbac}/reader"))[1]["rules"][0]["verbs"] == ["get"]
