"""CustomResourceDefinitions serve their kinds; deleting one removes them."""

from __future__ import annotations

from typing import Any

from devkube_raw import Raw


def crd(scope: str = "Namespaced", *, status: bool = True) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": "v1alpha1", "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}},
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "shortNames": ["wd"]},
            "versions": [version],
        },
    }


BASE = "/apis/example.com/v1alpha1"


async def test_namespaced_crd_lifecycle(raw: Raw) -> None:
    assert (await raw.get(f"{BASE}/namespaces/default/widgets"))[0] == 404
    status, created = await raw.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd())
    assert status == 201
    conds = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conds["Established"] == "True"
    _, groups = await raw.get("/apis")
    assert "example.com" in {g["name"] for g in groups["groups"]}
    _, res = await raw.get(BASE)
    assert {r["name"] for r in res["resources"]} == {"widgets", "widgets/status"}
    status, w = await raw.post(f"{BASE}/namespaces/default/widgets", {
        "apiVersion": "example.com/v1alpha1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 1}, "status": {"ignored": True}})
    assert status == 201 and "status" not in w and w["metadata"]["generation"] == 1
    _, w = await raw.patch(f"{BASE}/namespaces/default/widgets/w1", {"spec": {"size": 2}})
    assert w["metadata"]["generation"] == 2
    _, w = await raw.patch(f"{BASE}/namespaces/default/widgets/w1/status",
                           {"status": {"ready": True}})
    assert w["status"] == {"ready": True} and w["metadata"]["generation"] == 2
    status, body = await raw.patch(f"{BASE}/namespaces/default/widgets/w1",
                                   {"spec": {"size": 3}}, kind="strategic")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    _, listed = await raw.get(f"{BASE}/widgets")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
    status, _ = await raw.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                 "widgets.example.com")
    assert status == 200
    assert (await raw.get(f"{BASE}/namespaces/default/widgets/w1"))[0] == 404


async def test_cluster_scoped_crd(raw: Raw) -> None:
    await raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd("Cluster"))
    status, _ = await raw.post(f"{BASE}/widgets", {"metadata": {"name": "w"}})
    assert status == 201
    assert (await raw.get(f"{BASE}/widgets/w"))[1]["metadata"]["name"] == "w"
    assert (await raw.get(f"{BASE}/namespaces/default/widgets/w"))[0] == 404


async def test_crd_name_must_match(raw: Raw) -> None:
    body = crd()
    body["metadata"]["name"] = "wrong.example.com"
    status, err = await raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
    assert status == 422 and err["reason"] == "Invalid"


async def test_every_served_version_answers(raw: Raw) -> None:
    body = crd()
    body["spec"]["versions"] = [
        {**body["spec"]["versions"][0], "name": "v1", "storage": True},
        {**body["spec"]["versions"][0], "name": "v1beta1", "storage": False},
    ]
    await raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
    _, group = await raw.get("/apis/example.com")
    assert group["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    status, w = await raw.post("/apis/example.com/v1beta1/namespaces/default/widgets",
                               {"apiVersion": "example.com/v1beta1", "kind": "Widget",
                                "metadata": {"name": "w"}})
    assert status == 201 and w["apiVersion"] == "example.com/v1beta1"
    _, w1 = await raw.get("/apis/example.com/v1/namespaces/default/widgets/w")
    assert w1["apiVersion"] == "example.com/v1"
    _, listed = await raw.get("/apis/example.com/v1beta1/widgets")
    assert listed["apiVersion"] == "example.com/v1beta1"
    assert listed["items"][0]["apiVersion"] == "example.com/v1beta1"
