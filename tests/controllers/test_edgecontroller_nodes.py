"""Node register/query/update/patch, leases, connection notices and node health."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

import kubeclient
from fixtures.controller_hub import CLOUDCORE_IP, Hub, eventually

NODE_LABELS = {
    "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
    "node-role.kubernetes.io/agent": "", "node-role.kubernetes.io/edge": "",
}


def node_body(name: str) -> dict[str, Any]:
    # What edged sends on register (pods capture), trimmed.
    return {
        "metadata": {"name": name, "creationTimestamp": None,
                     "labels": {**NODE_LABELS, "kubernetes.io/hostname": name},
                     "annotations": {
                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "2", "memory": "1Gi", "pods": "110"}},
    }


READY_PATCH = json.dumps({"status": {
    "$setElementOrder/conditions": [{"type": "Ready"}],
    "conditions": [{"message": "edge is posting ready status", "reason": "EdgeReady",
                    "status": "True", "type": "Ready",
                    "lastHeartbeatTime": "2026-11-21T23:48:34Z",
                    "lastTransitionTime": "2026-11-21T23:48:34Z"}]}})


async def register(hub: Hub, name: str | None = None) -> tuple[str, Any]:
    name = name or f"edge-{secrets.token_hex(3)}"
    hub.kube_api.adopt_node(name)
    reply = await hub.request(name, f"null/node/{name}", "insert", node_body(name))
    return name, reply


def ready(node: dict[str, Any]) -> str | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status"))
    return None


async def test_register_node_reply_and_downstream_update(hub: Hub) -> None:
    name, reply = await register(hub)
    assert (reply.source, reply.group, reply.operation) == ("edgecontroller", "resource",
                                                            "response")
    assert reply.resource == f"null/node/{name}"
    assert reply.content["Err"] is None
    obj = reply.content["Object"]
    assert obj["metadata"]["name"] == name and obj["metadata"]["uid"]
    assert obj["metadata"]["annotations"]["cloudcore"] == CLOUDCORE_IP
    assert "kind" not in obj  # as a typed Go client returns it (capture)

    # The edge node is now watched: it gets its own Node as "update" with the RV.
    upd = await hub.downstream(name, f"null/node/{name}", "update")
    assert upd.content["kind"] == "Node" and upd.content["apiVersion"] == "v1"
    assert upd.resource_version == upd.content["metadata"]["resourceVersion"]
    assert upd.source == "edgecontroller" and upd.group == "resource"

    stored = await hub.client.get(kubeclient.NODES, name)
    assert stored["metadata"]["labels"]["node-role.kubernetes.io/edge"] == ""


async def test_register_twice_is_already_exists_status_error(hub: Hub) -> None:
    name, _ = await register(hub)
    _, again = await register(hub, name)
    assert again.content["Object"] is None
    status = again.content["Err"]["ErrStatus"]
    assert status["reason"] == "AlreadyExists" and status["code"] == 409
    assert status["status"] == "Failure" and "kind" not in status


async def test_query_patch_and_update_node(hub: Hub) -> None:
    name, _ = await register(hub)
    patched = await hub.request(name, f"null/nodepatch/{name}", "patch", READY_PATCH)
    assert patched.content["Err"] is None
    node = patched.content["Object"]
    assert ready(node) == "True"
    assert patched.resource_version == node["metadata"]["resourceVersion"]

    queried = await hub.request(name, f"null/node/{name}", "query")
    assert ready(queried.content["Object"]) == "True"

    body = queried.content["Object"]
    body["metadata"].setdefault("labels", {})["extra"] = "yes"
    updated = await hub.request(name, f"null/node/{name}", "update", body)
    assert updated.content == "OK"
    stored = await hub.client.get(kubeclient.NODES, name)
    assert stored["metadata"]["labels"]["extra"] == "yes"

    missing = await hub.request("ghost-node", "null/node/ghost-node", "query")
    assert missing.content["Err"]["ErrStatus"]["reason"] == "NotFound"


async def test_lease_query_insert_update(hub: Hub) -> None:
    try:
        await hub.client.create(kubeclient.NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
        hub.kube_api.adopt_namespace("kube-node-lease")
    except kubeclient.AlreadyExists:
        pass
    name, node_reply = await register(hub)
    res = f"kube-node-lease/lease/{name}"
    none = await hub.request(name, res, "query")
    assert none.content["Object"] is None
    err = none.content["Err"]["ErrStatus"]
    assert err["reason"] == "NotFound" and err["code"] == 404 and err["metadata"] == {}

    lease = {"metadata": {"name": name, "namespace": "kube-node-lease",
                          "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                               "uid": node_reply.content["Object"]["metadata"]
                                               ["uid"]}]},
             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                      "renewTime": "2026-11-21T23:48:05.000000Z"}}
    created = await hub.request(name, res, "insert", lease)
    assert created.content["Err"] is None
    obj = created.content["Object"]
    assert obj["spec"]["holderIdentity"] == name

    obj["spec"]["renewTime"] = "2026-11-21T23:48:15.124651Z"
    updated = await hub.request(name, res, "update", obj)
    assert updated.content["Object"]["spec"]["renewTime"].startswith("2026-11-21T23:48:15")
    stale = await hub.request(name, res, "update", obj)  # old resourceVersion
    assert stale.content["Err"]["ErrStatus"]["code"] == 409


async def test_connected_sets_annotation(hub: Hub) -> None:
    name = await hub.edge_node()
    await hub.client.patch(kubeclient.NODES, name,
                           {"metadata": {"annotations": {"cloudcore": "elsewhere"}}})
    await hub.connection(name, "connected")

    async def annotated() -> bool:
        node = await hub.client.get(kubeclient.NODES, name)
        return node["metadata"]["annotations"].get("cloudcore") == CLOUDCORE_IP

    await eventually(annotated)


async def test_node_goes_unknown_after_disconnect_and_returns(hub: Hub) -> None:
    hub.ec.health.grace = 2.0
    name, _ = await register(hub)
    await hub.connection(name, "connected")
    await hub.request(name, f"null/nodepatch/{name}", "patch", READY_PATCH)

    await hub.connection(name, "disconnected")

    async def ready_is(value: str) -> bool:
        return ready(await hub.client.get(kubeclient.NODES, name)) == value

    await eventually(lambda: ready_is("Unknown"))
    node = await hub.client.get(kubeclient.NODES, name)
    cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert cond["reason"] == "NodeStatusUnknown"
    # The edge learns about it too (node update downstream).
    await hub.downstream(name, f"null/node/{name}", "update",
                         where=lambda m: ready(m.content) == "Unknown")

    # It comes back and its kubelet posts Ready again.
    await hub.connection(name, "connected")
    await hub.request(name, f"null/nodepatch/{name}", "patch", READY_PATCH)
    await eventually(lambda: ready_is("True"))


async def test_connected_but_silent_node_goes_unknown(hub: Hub) -> None:
    hub.ec.health.grace = 2.0
    name, _ = await register(hub)
    await hub.connection(name, "connected")
    await hub.request(name, f"null/nodepatch/{name}", "patch", READY_PATCH)

    async def unknown() -> bool:
        return ready(await hub.client.get(kubeclient.NODES, name)) == "Unknown"

    await eventually(unknown)  # no lease renewal nor status for the grace period


async def test_a_deleted_node_is_no_longer_tracked(hub: Hub) -> None:
    # Health state per node that was never dropped grew with every node that
    # ever connected (node churn), long after the nodes were deleted.
    hub.ec.health.grace = 0.5
    name, _ = await register(hub)
    await hub.connection(name, "connected")
    assert name in hub.ec.health
    await hub.client.delete(kubeclient.NODES, name)
    await hub.connection(name, "disconnected")  # cloudhub ends the session
    await eventually(lambda: name not in hub.ec.health)


async def test_k8s_ca_and_unknown_requests(hub: Hub) -> None:
    name = await hub.edge_node()
    ca = await hub.request(name, "k8s/ca.crt", "query")
    expected = hub.client.config.ca_data
    assert ca.content == (expected.decode() if expected else "")
    if not hub.kube_api.is_real:
        assert "BEGIN CERTIFICATE" in ca.content
    unsupported = await hub.request(name, "default/persistentvolume/pv1", "query")
    assert unsupported.content["ErrStatus"]["code"] == 405


@pytest.mark.parametrize("content", ["not json", 42])
async def test_bad_register_content_is_answered(hub: Hub, content: Any) -> None:
    reply = await hub.request("bad-node", "null/node/bad-node", "insert", content)
    assert reply.content["Err"]["ErrStatus"]["code"] == 400


async def test_deprecated_nodestatus_update(hub: Hub) -> None:
    name, reply = await register(hub)
    status = {"conditions": [{"type": "Ready", "status": "True", "reason": "EdgeReady",
                              "lastHeartbeatTime": "2026-11-21T23:48:34Z",
                              "lastTransitionTime": "2026-11-21T23:48:34Z"}],
              "capacity": {"cpu": "4"}}
    ok = await hub.request(name, f"default/nodestatus/{name}", "update",
                           {"UID": reply.content["Object"]["metadata"]["uid"],
                            "Status": status, "ExtendResources": None})
    assert ok.content == "OK"
    stored = await hub.client.get(kubeclient.NODES, name)
    assert ready(stored) == "True" and stored["status"]["capacity"]["cpu"] == "4"
