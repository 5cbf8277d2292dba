"""Deletion semantics, namespace cascades, subresources (binding, token), services."""

from __future__ import annotations

import asyncio

import aiohttp
import jwt
from devkube_raw import Raw, pod

from devkube import DevKube

NS = "/api/v1/namespaces/default"


async def test_finalizers_hold_deletion(raw: Raw) -> None:
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "f",
                                                    "finalizers": ["example.com/hold"]}})
    status, body = await raw.delete(f"{NS}/configmaps/f")
    assert status == 200 and body["metadata"]["deletionTimestamp"]
    status, body = await raw.get(f"{NS}/configmaps/f")
    assert status == 200 and body["metadata"]["deletionTimestamp"]
    status, body = await raw.patch(f"{NS}/configmaps/f",
                                   {"metadata": {"finalizers": ["example.com/hold", "new/one"]}})
    assert status == 422 and "no new finalizers" in body["message"]
    # Removing the last finalizer completes the deletion.
    status, body = await raw.patch(f"{NS}/configmaps/f", {"metadata": {"finalizers": None}})
    assert status == 200
    assert (await raw.get(f"{NS}/configmaps/f"))[0] == 404


async def test_pod_graceful_deletion_on_a_node(raw: Raw) -> None:
    await raw.post(f"{NS}/pods", pod("bound", nodeName="n1", terminationGracePeriodSeconds=10))
    status, body = await raw.delete(f"{NS}/pods/bound")
    assert status == 200
    assert body["metadata"]["deletionGracePeriodSeconds"] == 10
    assert (await raw.get(f"{NS}/pods/bound"))[0] == 200  # waits for its kubelet
    # Status updates during graceful termination are kept (edged reports the exit).
    status, body = await raw.patch(f"{NS}/pods/bound/status", {"status": {"phase": "Succeeded"}})
    assert status == 200 and body["status"]["phase"] == "Succeeded"
    assert (await raw.get(f"{NS}/pods/bound"))[1]["status"]["phase"] == "Succeeded"
    status, body = await raw.delete(f"{NS}/pods/bound", {"gracePeriodSeconds": 0})
    assert status == 200
    assert (await raw.get(f"{NS}/pods/bound"))[0] == 404
    # Pods on no node go at once.
    await raw.post(f"{NS}/pods", pod("unbound"))
    await raw.delete(f"{NS}/pods/unbound")
    assert (await raw.get(f"{NS}/pods/unbound"))[0] == 404


async def test_delete_preconditions(raw: Raw) -> None:
    _, c = await raw.post(f"{NS}/configmaps", {"metadata": {"name": "c"}})
    status, body = await raw.delete(f"{NS}/configmaps/c", {"preconditions": {"uid": "other"}})
    assert status == 409 and body["reason"] == "Conflict"
    status, _ = await raw.delete(f"{NS}/configmaps/c",
                                 {"preconditions": {"uid": c["metadata"]["uid"]}})
    assert status == 200


async def test_deletecollection(raw: Raw) -> None:
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        await raw.post(f"{NS}/configmaps", {"metadata": {"name": name, "labels": {"app": app}}})
    status, body = await raw.delete(f"{NS}/configmaps", params={"labelSelector": "app=x"})
    assert status == 200 and body["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["a", "b"]
    _, left = await raw.get(f"{NS}/configmaps")
    assert [i["metadata"]["name"] for i in left["items"]] == ["c"]


async def test_namespace_deletion_cascades(raw: Raw) -> None:
    await raw.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    base = "/api/v1/namespaces/doomed"
    await raw.post(f"{base}/configmaps", {"metadata": {"name": "c"}})
    await raw.post(f"{base}/secrets", {"metadata": {"name": "s"}})
    await raw.post(f"{base}/configmaps", {"metadata": {"name": "held", "finalizers": ["x/y"]}})
    status, body = await raw.delete(base)
    assert status == 200 and body["status"]["phase"] == "Terminating"
    assert (await raw.get(f"{base}/configmaps/c"))[0] == 404
    assert (await raw.get(f"{base}/secrets/s"))[0] == 404
    # A finalizer holds the namespace; new content is refused meanwhile.
    status, body = await raw.post(f"{base}/configmaps", {"metadata": {"name": "new"}})
    assert status == 403 and body["reason"] == "Forbidden"
    assert (await raw.get(base))[0] == 200
    await raw.patch(f"{base}/configmaps/held", {"metadata": {"finalizers": []}})
    assert (await raw.get(base))[0] == 404


async def test_binding_conflicts_once_bound(raw: Raw) -> None:
    await raw.post(f"{NS}/pods", pod("p"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    assert (await raw.post(f"{NS}/pods/p/binding", binding))[0] == 201
    _, got = await raw.get(f"{NS}/pods/p")
    assert got["spec"]["nodeName"] == "n1"
    assert {c["type"] for c in got["status"]["conditions"]} == {"PodScheduled"}
    status, _body = await raw.post(f"{NS}/pods/p/binding", binding)
    assert status == 409


async def test_service_account_token(kube: DevKube, raw: Raw) -> None:
    _, sa = await raw.post(f"{NS}/serviceaccounts", {"metadata": {"name": "robot"}})
    await raw.post(f"{NS}/pods", pod("holder"))
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"audiences": ["edge"], "expirationSeconds": 3600,
                        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                           "name": "holder"}}}
    status, body = await raw.post(f"{NS}/serviceaccounts/robot/token", request)
    assert status == 201 and body["kind"] == "TokenRequest"
    token = body["status"]["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:default:robot"
    assert claims["aud"] == ["edge"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"]["serviceaccount"]["uid"] == sa["metadata"]["uid"]
    assert claims["kubernetes.io"]["pod"]["name"] == "holder"
    assert body["status"]["expirationTimestamp"].endswith("Z")
    # The token authenticates to devkube; a tampered one does not.
    async with aiohttp.ClientSession() as s:
        async with s.get(kube.url + "/api", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
        async with s.get(kube.url + "/api",
                         headers={"Authorization": f"Bearer {token[:-4]}AAAA"}) as r:
            assert r.status == 401
        # Deleting the pod it is bound to revokes it, as on kube-apiserver.
        await raw.delete(f"{NS}/pods/holder")
        async with s.get(kube.url + "/api", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 401
    request["spec"]["boundObjectRef"] = None
    request["spec"]["expirationSeconds"] = 60
    status, body = await raw.post(f"{NS}/serviceaccounts/robot/token", request)
    assert status == 422
    status, body = await raw.post(f"{NS}/serviceaccounts/nobody/token", {})
    assert status == 404


async def test_services_and_endpoints(raw: Raw) -> None:
    status, svc = await raw.post(f"{NS}/services", {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert status == 201
    assert svc["spec"]["clusterIP"].startswith("10.9") and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    _, svc2 = await raw.post(f"{NS}/services", {"metadata": {"name": "api"},
                                                "spec": {"ports": [{"port": 443}]}})
    assert svc2["spec"]["clusterIP"] != svc["spec"]["clusterIP"]
    # Service ports merge by port in strategic merge patches.
    _, svc = await raw.patch(f"{NS}/services/web", {"spec": {"ports": [
        {"port": 80, "name": "http"}, {"port": 8080}]}}, kind="strategic")
    assert [(p["port"], p.get("name")) for p in svc["spec"]["ports"]] == [
        (80, "http"), (8080, None)]
    status, _ = await raw.post(f"{NS}/endpoints", {
        "metadata": {"name": "web"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})
    assert status == 201
    status, _body = await raw.post(f"{NS}/services", {"metadata": {"name": "1bad"}})
    assert status == 422  # service names are DNS-1035 labels


async def test_watch_sees_namespace_cascade(raw: Raw) -> None:
    await raw.post("/api/v1/namespaces", {"metadata": {"name": "gone"}})
    _, cm = await raw.post("/api/v1/namespaces/gone/configmaps", {"metadata": {"name": "c"}})
    events: list[str] = []

    async def watch() -> None:
        async for ev in raw.watch("/api/v1/configmaps",
                                  {"resourceVersion": cm["metadata"]["resourceVersion"]}):
            events.append(f"{ev['type']} {ev['object']['metadata']['name']}")
            return

    task = asyncio.create_task(watch())
    await raw.delete("/api/v1/namespaces/gone")
    async with asyncio.timeout(10):
        await task
    assert events == ["DELETED c"]


async def test_graceful_pod_with_finalizer(raw: Raw) -> None:
    body = pod("held", nodeName="n1")
    body["metadata"]["finalizers"] = ["example.com/f"]
    await raw.post(f"{NS}/pods", body)
    await raw.delete(f"{NS}/pods/held")
    await raw.delete(f"{NS}/pods/held", {"gracePeriodSeconds": 0})
    _, got = await raw.get(f"{NS}/pods/held")
    assert got["metadata"]["deletionGracePeriodSeconds"] == 0
    await raw.patch(f"{NS}/pods/held", {"metadata": {"finalizers": None}})
    assert (await raw.get(f"{NS}/pods/held"))[0] == 404


async def test_crd_noop_update_keeps_resource_version(raw: Raw) -> None:
    crd = {"metadata": {"name": "things.ex.io"},
           "spec": {"group": "ex.io", "scope": "Cluster",
                    "names": {"plural": "things", "kind": "Thing"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    _, created = await raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    _, same = await raw.put("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                            "things.ex.io", created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_every_namespace_gets_a_default_service_account(raw: Raw) -> None:
    await raw.post("/api/v1/namespaces", {"metadata": {"name": "fresh"}})
    status, sa = await raw.get("/api/v1/namespaces/fresh/serviceaccounts/default")
    assert status == 200 and sa["metadata"]["uid"]
    assert (await raw.get(f"{NS}/serviceaccounts/default"))[0] == 200
