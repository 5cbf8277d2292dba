"""The official ``kubernetes`` Python client against the ``kube_api`` fixture: list,
watch (resume and 410 recovery), create, the three patch kinds, status updates and
custom objects. The client is blocking; the fixture's server runs on its own thread."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from fixtures.apiserver import KubeApi


@pytest.fixture
def k8s(kube_api: KubeApi) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(str(kube_api.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def ns(kube_api: KubeApi) -> str:
    import asyncio

    return asyncio.run(kube_api.make_namespace("oc"))


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_list_get_delete(k8s: client.ApiClient, ns: str) -> None:
    v1 = client.CoreV1Api(k8s)
    v1.create_namespaced_config_map(ns, cm("a", x="1"))
    v1.create_namespaced_config_map(ns, cm("b"))
    listed = v1.list_namespaced_config_map(ns)
    # (a real cluster also puts kube-root-ca.crt in every namespace)
    assert [i.metadata.name for i in listed.items if i.metadata.name in "ab"] == ["a", "b"]
    assert int(listed.metadata.resource_version) > 0
    assert v1.read_namespaced_config_map("a", ns).data == {"x": "1"}
    v1.delete_namespaced_config_map("a", ns)
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_config_map("a", ns)
    assert err.value.status == 404


def test_three_patch_kinds(k8s: client.ApiClient, ns: str) -> None:
    v1 = client.CoreV1Api(k8s)
    v1.create_namespaced_pod(ns, {
        "metadata": {"name": "p", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "c1", "image": "busybox:1.36"},
                                {"name": "c2", "image": "busybox:1.36"}]}})
    # A dict body is sent as a strategic merge patch: containers merge by name.
    pod = v1.patch_namespaced_pod("p", ns, {"spec": {"containers": [
        {"name": "c2", "image": "busybox:1.37"}]}})
    assert [(c.name, c.image) for c in pod.spec.containers] == [
        ("c1", "busybox:1.36"), ("c2", "busybox:1.37")]
    # A list body is a JSON patch.
    pod = v1.patch_namespaced_pod("p", ns, [
        {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
        {"op": "add", "path": "/metadata/labels/b", "value": "3"}])
    assert pod.metadata.labels == {"a": "2", "b": "3"}
    # An explicit JSON merge patch: null deletes a key.
    pod = v1.patch_namespaced_pod("p", ns, {"metadata": {"labels": {"b": None}}},
                                  _content_type="application/merge-patch+json")
    assert pod.metadata.labels == {"a": "2"}


def test_status_updates(k8s: client.ApiClient, kube_api: KubeApi) -> None:
    import asyncio

    node = asyncio.run(kube_api.make_node("oc"))
    v1 = client.CoreV1Api(k8s)
    got = v1.patch_node_status(node, {"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})
    assert got.status.conditions[0].reason == "KubeletReady"
    body = v1.read_node_status(node)
    body.status.conditions[0].status = "False"
    replaced = v1.replace_node_status(node, body)
    assert replaced.status.conditions[0].status == "False"
    body.status.conditions[0].status = "Unknown"  # stale resourceVersion now
    with pytest.raises(ApiException) as err:
        v1.replace_node_status(node, body)
    assert err.value.status == 409


def test_watch_resume_and_410_recovery(k8s: client.ApiClient, ns: str, kube_api: KubeApi) -> None:
    v1 = client.CoreV1Api(k8s)
    rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, cm("a"))
    v1.patch_namespaced_config_map("a", ns, {"data": {"k": "v"}})
    w = watch.Watch()
    seen = []
    for ev in w.stream(v1.list_namespaced_config_map, ns, resource_version=rv,
                       timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.resource_version))
        if len(seen) == 2:
            w.stop()
    assert [t for t, _ in seen] == ["ADDED", "MODIFIED"]
    # Resume after the first event: only the second is replayed.
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, ns, resource_version=seen[0][1],
                       timeout_seconds=10):
        assert (ev["type"], ev["object"].metadata.resource_version) == seen[1]
        w.stop()
    if not kube_api.can_compact:
        return
    import asyncio

    asyncio.run(kube_api.compact())
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=rv,
                                      timeout_seconds=10):
            raise AssertionError("no event expected from a compacted resourceVersion")
    assert err.value.status == 410
    # Recovery: relist, then watch from the new list's resourceVersion.
    fresh = v1.list_namespaced_config_map(ns)
    v1.delete_namespaced_config_map("a", ns)
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, ns,
                       resource_version=fresh.metadata.resource_version, timeout_seconds=10):
        assert ev["type"] == "DELETED" and ev["object"].metadata.name == "a"
        w.stop()


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.devkube.test"},
    "spec": {
        "group": "devkube.test",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object",
                                           "x-kubernetes-preserve-unknown-fields": True}},
        }],
    },
}


def test_custom_objects(k8s: client.ApiClient, ns: str, kube_api: KubeApi) -> None:
    ext = client.ApiextensionsV1Api(k8s)
    try:
        ext.create_custom_resource_definition(CRD)
    except ApiException as exc:  # a shared real cluster may already have it
        assert kube_api.is_real and exc.status == 409
    co = client.CustomObjectsApi(k8s)
    args = ("devkube.test", "v1", ns, "gadgets")
    import time

    deadline = time.monotonic() + 30
    while True:  # a real API server serves a new CRD after a moment
        try:
            co.list_namespaced_custom_object(*args)
            break
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    body = {"apiVersion": "devkube.test/v1", "kind": "Gadget", "metadata": {"name": "g"},
            "spec": {"size": 1}}
    created = co.create_namespaced_custom_object(*args, body)
    assert created["metadata"]["generation"] == 1
    patched = co.patch_namespaced_custom_object(*args, "g", {"spec": {"size": 2}})
    assert patched["spec"]["size"] == 2 and patched["metadata"]["generation"] == 2
    status = co.patch_namespaced_custom_object_status(*args, "g", {"status": {"ok": True}})
    assert status["status"] == {"ok": True}
    listed = co.list_namespaced_custom_object(*args)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["g"]
    co.delete_namespaced_custom_object(*args, "g")
    with pytest.raises(ApiException) as err:
        co.get_namespaced_custom_object(*args, "g")
    assert err.value.status == 404
    if not kube_api.is_real:
        ext.delete_custom_resource_definition(CRD["metadata"]["name"])
