"""Pods, configmaps, secrets and tokens between the API and an edge node."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import kubeclient
from fixtures.controller_hub import Hub, eventually
from kubeclient import CONFIGMAPS, PODS, SECRETS, SERVICEACCOUNTS

DELETE_NOW = {"gracePeriodSeconds": 0}


def pod(name: str, node: str, *, volumes: list[Any] | None = None,
        env: list[Any] | None = None, env_from: list[Any] | None = None,
        pull_secrets: list[str] | None = None,
        init_env: list[Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [{"name": "c", "image": "busybox:1.36", "env": env or [],
                        "envFrom": env_from or []}],
        "volumes": volumes or [],
    }
    if pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in pull_secrets]
    if init_env:
        spec["initContainers"] = [{"name": "i", "image": "busybox:1.36", "env": init_env}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": data, "type": "Opaque"}


async def test_pod_lifecycle_configmap_secret_routing(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("pods")
    node = await hub.edge_node()
    other = await hub.edge_node("other")
    c = hub.client
    await c.create(CONFIGMAPS, cm("cap-cm", a="1"), ns)
    await c.create(SECRETS, secret("cap-secret", p="s3cret"), ns)
    mark = hub.mark()
    await c.create(PODS, pod("cap-pod", node,
                             volumes=[{"name": "v", "configMap": {"name": "cap-cm"}}],
                             env=[{"name": "P", "valueFrom": {"secretKeyRef": {
                                 "name": "cap-secret", "key": "p"}}}]), ns)

    # Added pods go out as insert (pods capture), with kind and resourceversion.
    ins = await hub.downstream(node, f"{ns}/pod/cap-pod", "insert", after=mark)
    assert ins.content["kind"] == "Pod" and ins.content["apiVersion"] == "v1"
    assert ins.resource_version == ins.content["metadata"]["resourceVersion"]
    assert (ins.source, ins.group) == ("edgecontroller", "resource")

    # The edge asks for what the pod needs; answers come from the informer cache.
    q = await hub.request(node, f"{ns}/configmap/cap-cm", "query")
    assert q.operation == "response" and q.resource == f"{ns}/configmap/cap-cm"
    assert q.content["kind"] == "ConfigMap" and q.content["data"] == {"a": "1"}
    assert q.resource_version == q.content["metadata"]["resourceVersion"]
    qs = await hub.request(node, f"{ns}/secret/cap-secret", "query")
    assert qs.content["kind"] == "Secret" and qs.resource_version
    missing = await hub.request(node, f"{ns}/configmap/nope", "query")
    assert missing.content["ErrStatus"]["reason"] == "NotFound"
    assert missing.resource_version == ""

    # Status goes up as a strategic merge patch in a JSON string.
    uid = ins.content["metadata"]["uid"]
    patch = json.dumps({"metadata": {"uid": uid}, "status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    patched = await hub.request(node, f"{ns}/podpatch/cap-pod", "patch", patch)
    assert patched.content["Err"] is None
    assert patched.content["Object"]["status"]["phase"] == "Running"
    assert patched.resource_version == patched.content["Object"]["metadata"]["resourceVersion"]
    await hub.downstream(node, f"{ns}/pod/cap-pod", "update",
                         where=lambda m: m.content["status"].get("phase") == "Running")

    # A changed ConfigMap reaches the node that uses it, and no other node.
    mark = hub.mark()
    await c.patch(CONFIGMAPS, "cap-cm", {"data": {"a": "2"}}, ns)
    upd = await hub.downstream(node, f"{ns}/configmap/cap-cm", "update", after=mark)
    assert upd.content["data"] == {"a": "2"}
    await c.patch(SECRETS, "cap-secret", {"stringData": {"p": "new"}}, ns)
    await hub.downstream(node, f"{ns}/secret/cap-secret", "update", after=mark)
    assert not [m for m in hub.to_node(other, mark) if "cap-" in m.resource]

    # The edge finished the pod: it deletes it with DeleteOptions.
    mark = hub.mark()
    ok = await hub.request(node, f"{ns}/pod/cap-pod", "delete",
                           {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})
    assert ok.content == "OK"
    await hub.downstream(node, f"{ns}/pod/cap-pod", "delete", after=mark)
    # The last user is gone: the node is told to drop its copies...
    d1 = await hub.downstream(node, f"{ns}/configmap/cap-cm", "delete", after=mark)
    assert d1.content["kind"] == "ConfigMap"
    await hub.downstream(node, f"{ns}/secret/cap-secret", "delete", after=mark)
    # ...and later changes no longer reach it. ConfigMap events come over one watch
    # in order, so once a later change to a used ConfigMap has arrived, an update of
    # cap-cm would have arrived before it.
    await c.create(CONFIGMAPS, cm("still-used"), ns)
    await c.create(PODS, pod("user", node, env_from=[{"configMapRef": {"name": "still-used"}}]),
                   ns)
    await hub.downstream(node, f"{ns}/pod/user", "insert", after=mark)
    mark = hub.mark()
    await c.patch(CONFIGMAPS, "cap-cm", {"data": {"a": "3"}}, ns)
    await c.patch(CONFIGMAPS, "still-used", {"data": {"x": "1"}}, ns)
    await hub.downstream(node, f"{ns}/configmap/still-used", "update", after=mark)
    assert not [m for m in hub.to_node(node, mark) if m.resource.endswith("/cap-cm")]

    # Deleting a ConfigMap in use sends delete to its node.
    mark = hub.mark()
    await c.delete(CONFIGMAPS, "still-used", ns)
    await hub.downstream(node, f"{ns}/configmap/still-used", "delete", after=mark)


async def test_every_reference_kind_routes(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("refs")
    node = await hub.edge_node()
    c = hub.client
    await c.create(PODS, pod(
        "refs", node,
        volumes=[{"name": "proj", "projected": {"sources": [
            {"configMap": {"name": "cm-projected"}}, {"secret": {"name": "s-projected"}}]}},
            {"name": "sv", "secret": {"secretName": "s-volume"}}],
        env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}}],
        env_from=[{"secretRef": {"name": "s-envfrom"}}],
        init_env=[{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm-init",
                                                                  "key": "k"}}}],
        pull_secrets=["s-pull"]), ns)
    await hub.downstream(node, f"{ns}/pod/refs", "insert")
    mark = hub.mark()
    for name in ("cm-projected", "cm-env", "cm-init"):
        await c.create(CONFIGMAPS, cm(name), ns)
    for name in ("s-projected", "s-volume", "s-envfrom", "s-pull"):
        await c.create(SECRETS, secret(name), ns)
    for name in ("cm-projected", "cm-env", "cm-init"):
        await hub.downstream(node, f"{ns}/configmap/{name}", "insert", after=mark)
    for name in ("s-projected", "s-volume", "s-envfrom", "s-pull"):
        # KubeEdge sends an added Secret as "update".
        await hub.downstream(node, f"{ns}/secret/{name}", "update", after=mark)


async def test_pods_on_other_nodes_are_not_sent(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("plain")
    plain = await hub.kube_api.make_node("cloudnode")  # no edge label
    node = await hub.edge_node()
    mark = hub.mark()
    await hub.client.create(PODS, pod("cloud-pod", plain), ns)
    await hub.client.create(PODS, pod("edge-pod", node), ns)
    await hub.downstream(node, f"{ns}/pod/edge-pod", "insert", after=mark)
    assert not [s for s in hub.seen[mark:] if "cloud-pod" in s.wire.resource]

    # Labelling the node later makes it an edge node and its pods are sent.
    mark = hub.mark()
    await hub.client.patch(kubeclient.NODES, plain,
                           {"metadata": {"labels": {"node-role.kubernetes.io/edge": ""}}})
    await hub.downstream(plain, f"null/node/{plain}", "update", after=mark)
    await hub.downstream(plain, f"{ns}/pod/cloud-pod", "insert", after=mark)


async def test_pod_delete_and_create_from_edge(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("edgepods")
    node = await hub.edge_node()
    mirror = pod("static-web", node)
    created = await hub.request(node, f"{ns}/pod/static-web", "insert", mirror)
    assert created.content["Err"] is None
    assert created.content["Object"]["metadata"]["name"] == "static-web"
    await hub.downstream(node, f"{ns}/pod/static-web", "insert")
    # Legacy delete form: the UID as a plain string.
    uid = created.content["Object"]["metadata"]["uid"]
    ok = await hub.request(node, f"{ns}/pod/static-web", "delete", uid)
    assert ok.content == "OK"

    async def gone() -> bool:
        try:
            got = await hub.client.get(PODS, "static-web", ns)
        except kubeclient.NotFound:
            return True
        return bool(got["metadata"].get("deletionTimestamp"))

    await eventually(gone)
    # Deleting what is already gone is still OK for the edge.
    again = await hub.request(node, f"{ns}/pod/ghost", "delete", DELETE_NOW)
    assert again.content == "OK"


async def test_service_account_token_and_events(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("sa")
    node = await hub.edge_node()
    with contextlib.suppress(kubeclient.AlreadyExists):
        await hub.client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, ns)
    bound = await hub.client.create(PODS, pod("p", node), ns)
    request = {"metadata": {"creationTimestamp": None},
               "spec": {"audiences": None, "expirationSeconds": 3607,
                        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p",
                                           "uid": bound["metadata"]["uid"]}},
               "status": {"token": "", "expirationTimestamp": None}}
    token = await hub.request(node, f"{ns}/serviceaccounttoken/default", "query", request)
    assert token.content["kind"] == "TokenRequest"
    assert token.content["status"]["token"].count(".") == 2
    bad = await hub.request(node, f"{ns}/serviceaccounttoken/nobody", "query", request)
    assert bad.content["ErrStatus"]["code"] == 404

    event = {"metadata": {"name": "p.17a", "namespace": ns},
             "involvedObject": {"kind": "Pod", "namespace": ns, "name": "p"},
             "reason": "Started", "message": "Started container c", "type": "Normal",
             "source": {"component": "kubelet", "host": node}, "count": 1}
    await hub.notify(node, f"{ns}/event/p.17a", "insert", event)

    async def recorded() -> bool:
        try:
            got = await hub.client.get(kubeclient.EVENTS, "p.17a", ns)
        except kubeclient.NotFound:
            return False
        return bool(got["reason"] == "Started")

    await eventually(recorded)
    await hub.notify(node, f"{ns}/event/p.17a", "patch",
                     {"event": event, "patchData": '{"count":2}'})

    async def counted() -> bool:
        return bool((await hub.client.get(kubeclient.EVENTS, "p.17a", ns)).get("count") == 2)

    await eventually(counted)
    current = await hub.client.get(kubeclient.EVENTS, "p.17a", ns)
    await hub.notify(node, f"{ns}/event/p.17a", "update", {**current, "count": 5})

    async def updated() -> bool:
        return bool((await hub.client.get(kubeclient.EVENTS, "p.17a", ns)).get("count") == 5)

    await eventually(updated)


async def test_node_delete_goes_to_the_node(hub: Hub) -> None:
    node = await hub.edge_node()
    mark = hub.mark()
    await hub.client.delete(kubeclient.NODES, node)
    gone = await hub.downstream(node, f"null/node/{node}", "delete", after=mark)
    assert gone.content["kind"] == "Node"


async def test_object_index_for_node_authorization(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("authz")
    node = await hub.edge_node()
    other = await hub.edge_node("other")
    c = hub.client
    await c.create(PODS, {**pod("web", node, volumes=[{"configMap": {"name": "cfg"}}],
                                pull_secrets=["pull"]),
                          }, ns)
    await hub.downstream(node, f"{ns}/pod/web", "insert")
    index = hub.ec.object_index()
    assert await index.pod_bound(node, ns, "web")
    assert not await index.pod_bound(other, ns, "web")
    assert await index.pod_exists(ns, "web")
    assert not await index.pod_exists(ns, "missing")
    assert await index.configmap_referenced(node, ns, "cfg")
    assert not await index.configmap_referenced(other, ns, "cfg")
    assert await index.secret_referenced(node, ns, "pull")
    assert not await index.secret_referenced(node, ns, "cfg")
    assert await index.serviceaccount_referenced(node, ns, "default")
    assert not await index.serviceaccount_referenced(node, ns, "admin")
    assert not await index.serviceaccount_referenced(other, ns, "default")
