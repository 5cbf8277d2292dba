"""Pure parts of the controllers: locator, health, placement, twins, reply shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubeclient
from beehive.message import Message
from cloudcore.devicecontroller.downstream import membership_content
from cloudcore.devicecontroller.placement import ModelKey, Placement
from cloudcore.devicecontroller.upstream import merge_twins
from cloudcore.edgecontroller.health import NodeHealth
from cloudcore.edgecontroller.locator import NodeLocator, ObjRef, pod_references
from cloudcore.edgecontroller.messages import object_message, object_resp, reply

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def pod(name: str, node: str, ns: str = "ns", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node, **spec}}


def test_pod_references_every_place() -> None:
    p = pod("p", "n",
            volumes=[{"configMap": {"name": "c1"}}, {"secret": {"secretName": "s1"}},
                     {"projected": {"sources": [{"configMap": {"name": "c2"}},
                                                {"secret": {"name": "s2"}},
                                                {"serviceAccountToken": {"path": "t"}}]}},
                     {"emptyDir": {}}],
            containers=[{"env": [{"name": "a", "value": "x"},
                                 {"valueFrom": {"configMapKeyRef": {"name": "c3"}}},
                                 {"valueFrom": {"secretKeyRef": {"name": "s3"}}},
                                 {"valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                         "envFrom": [{"configMapRef": {"name": "c4"}},
                                     {"secretRef": {"name": "s4"}}]}],
            initContainers=[{"envFrom": [{"configMapRef": {"name": "c5"}}]}],
            imagePullSecrets=[{"name": "s5"}])
    refs = pod_references(p)
    assert refs == {ObjRef("configmap", "ns", f"c{i}") for i in range(1, 6)} | {
        ObjRef("secret", "ns", f"s{i}") for i in range(1, 6)}


def test_locator_reference_counts_per_node() -> None:
    loc = NodeLocator()
    loc.edge_nodes |= {"n1", "n2"}
    vol = [{"configMap": {"name": "c"}}]
    assert loc.update_pod(pod("a", "n1", volumes=vol)) == []
    assert loc.update_pod(pod("b", "n1", volumes=vol)) == []
    assert loc.update_pod(pod("c", "n2", volumes=vol)) == []
    assert loc.update_pod(pod("x", "n3", volumes=vol)) == []  # not an edge node
    ref = ObjRef("configmap", "ns", "c")
    assert loc.nodes_for(ref) == ["n1", "n2"]
    assert loc.delete_pod(pod("a", "n1")) == []  # b still uses it on n1
    assert loc.delete_pod(pod("b", "n1")) == [(ref, "n1")]
    assert loc.nodes_for(ref) == ["n2"]
    assert loc.update_pod(pod("c", "n2", volumes=vol)) == []  # unchanged
    assert loc.update_pod(pod("c", "n2")) == [(ref, "n2")]  # reference dropped
    assert loc.delete_pod(pod("never", "n1")) == []
    assert loc.pods_on("n2") == ["ns/c"]
    assert loc.update_pod(pod("u", "", volumes=vol)) == []  # unscheduled: not tracked
    assert loc.refs_of_node("n3") == {ref}


def test_health_reports_once_per_outage() -> None:
    h = NodeHealth(grace=10)
    h.connected("a", 0)
    h.connected("b", 0)
    h.heard("a", 5)
    assert h.due(9) == []
    assert h.due(10) == ["b"]  # connected but silent
    assert h.due(11) == []  # once
    h.disconnected("a", 12)
    assert h.due(21) == []
    assert h.due(22) == ["a"]
    h.heard("a", 23)  # back: re-armed
    assert h.is_connected("a")
    assert h.due(32) == []
    assert h.due(33) == ["a"]
    h.heard("c", 0)  # a request without a connect notice counts as connected
    assert h.is_connected("c")
    h.forget("c")
    assert not h.is_connected("c")


def test_placement_models_follow_their_last_user() -> None:
    p = Placement()
    assert p.place("ns", "d1", "n", "m") is True
    assert p.place("ns", "d2", "n", "m") is False
    assert p.place("ns", "d3", "n", "") is False
    assert p.model_nodes("ns", "m") == [ModelKey("n", "ns", "m")]
    assert p.remove("ns", "d1") == ("n", "m", False)
    assert p.remove("ns", "d2") == ("n", "m", True)
    assert p.remove("ns", "d3") == ("n", "", False)
    assert p.remove("ns", "d1") is None


def test_merge_twins() -> None:
    current = [{"propertyName": "keep", "reported": {"value": "1"}}]
    out = merge_twins(current, {
        "t": {"actual": {"value": 19.5, "metadata": {"timestamp": 7}},
              "expected": {"value": "20"}, "metadata": {"type": "float"}},
        "keep": "not a dict",
        "unknown": {"actual": {"value": "x"}}}, {"t", "keep"})
    assert out == [
        {"propertyName": "keep", "reported": {"value": "1"}},
        {"propertyName": "t",
         "reported": {"value": "19.5", "metadata": {"timestamp": "7", "type": "float"}},
         "observedDesired": {"value": "20", "metadata": {"type": "float"}}}]
    assert current == [{"propertyName": "keep", "reported": {"value": "1"}}]  # not mutated


def test_membership_content_shape() -> None:
    dev = {"metadata": {"name": "d", "namespace": "ns", "labels": {"description": "x"}}}
    added = membership_content([dev], None, timestamp=5)
    assert added["added_devices"] == [{"id": "ns/d", "name": "d", "description": "x"}]
    assert added["removed_devices"] is None and added["timestamp"] == 5
    removed = membership_content(None, [dev])
    assert removed["removed_devices"] == [{"id": "ns/d", "name": "d"}]


def _capture(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CAPTURES / name).read_text().splitlines()]


def test_not_found_reply_matches_the_capture() -> None:
    frames = [f["frame"] for f in _capture("kubeedge-1.23-ws-pods.jsonl")
              if f.get("dir") == "cloud->edge" and isinstance(f.get("frame"), dict)]
    real = next(f for f in frames if f["route"]["resource"].startswith("kube-node-lease")
                and f["content"]["Err"] is not None)
    # The Status the API server sends, as kubeclient maps it.
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'leases.coordination.k8s.io "capture-edge" not found',
            "reason": "NotFound",
            "details": {"name": "capture-edge", "group": "coordination.k8s.io",
                        "kind": "leases"}, "code": 404}
    ours = object_resp(None, kubeclient.errors.error_from_status(404, body))
    assert ours.keys() == real["content"].keys()
    assert ours["Object"] is None
    assert ours["Err"].keys() == real["content"]["Err"].keys()
    assert set(ours["Err"]["ErrStatus"]) == set(real["content"]["Err"]["ErrStatus"])


def test_reply_and_object_message_routes() -> None:
    req = Message.new(source="edged", group="meta", operation="query",
                      resource="node/n1/ns/configmap/c")
    r = reply(req, {"x": 1}, resource_version="7")
    assert (r.source, r.group, r.operation, r.resource, r.parent_id, r.resource_version) == (
        "edgecontroller", "resource", "response", "node/n1/ns/configmap/c", req.msg_id, "7")
    m = object_message("n1", {"metadata": {"name": "p", "namespace": "ns",
                                           "resourceVersion": "9"}}, "pod", "insert",
                       ref=kubeclient.PODS)
    assert m.resource == "node/n1/ns/pod/p" and m.resource_version == "9"
    assert m.content["kind"] == "Pod"
    node = object_message("n1", {"metadata": {"name": "n1"}}, "node", "update")
    assert node.resource == "node/n1/null/node/n1"


def test_settings_and_enable_from_cloudcore_config() -> None:
    from cloudcore.devicecontroller import DeviceController
    from cloudcore.edgecontroller import EdgeController, EdgeControllerSettings
    from kecommon.config import CloudCoreConfig

    cfg = CloudCoreConfig()
    cfg.modules.cloud_hub.advertise_address = ["203.0.113.7"]
    cfg.modules.edge_controller.node_update_frequency = 3
    s = EdgeControllerSettings.from_config(cfg)
    assert (s.cloudcore_address, s.node_check_interval) == ("203.0.113.7", 3.0)
    client = kubeclient.KubeClient(kubeclient.ClusterConfig(server="http://127.0.0.1:1"))
    ec, dc = EdgeController(client), DeviceController(client)
    assert ec.enabled(cfg) and dc.enabled(cfg)
    cfg.modules.edge_controller.enable = False
    cfg.modules.device_controller.enable = False
    assert not ec.enabled(cfg) and not dc.enabled(cfg)
    assert (ec.name, ec.group, dc.name, dc.group) == (
        "edgecontroller", "edgecontroller", "devicecontroller", "devicecontroller")


def test_node_monitor_grace_period_from_cloudcore_config() -> None:
    # Our extra edgeController.nodeMonitorGracePeriod: parsed from YAML and used by
    # edgecontroller, so a short outage test (and an operator) can tune it.
    from cloudcore.edgecontroller import EdgeControllerSettings
    from kecommon.config import parse_cloudcore_config

    cfg = parse_cloudcore_config(
        "apiVersion: cloudcore.config.kubeedge.io/v1alpha2\nkind: CloudCore\n"
        "modules:\n  edgeController:\n    nodeMonitorGracePeriod: 4\n",
        file="cloudcore.yaml",
    )
    assert EdgeControllerSettings.from_config(cfg).node_monitor_grace_period == 4.0
