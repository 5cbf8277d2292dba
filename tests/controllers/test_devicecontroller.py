"""Devices: membership, models, DeviceStatus, twin/state reports, moving nodes."""

from __future__ import annotations

import json
from typing import Any

import kubeclient
from beehive.message import Message
from fixtures.controller_hub import Hub, eventually
from kubeclient import DEVICEMODELS, DEVICES, DEVICESTATUSES


def model(name: str) -> dict[str, Any]:
    return {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
            "metadata": {"name": name},
            "spec": {"protocol": "virtual", "properties": [
                {"name": "temperature", "description": "measured", "type": "FLOAT",
                 "accessMode": "ReadOnly", "unit": "C"},
                {"name": "target", "description": "setpoint", "type": "FLOAT",
                 "accessMode": "ReadWrite", "minimum": "5", "maximum": "30"}]}}


def device(name: str, node: str, model_name: str, target: str = "21") -> dict[str, Any]:
    return {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
            "metadata": {"name": name, "labels": {"description": "a thermometer"}},
            "spec": {"deviceModelRef": {"name": model_name}, "nodeName": node,
                     "protocol": {"protocolName": "virtual"},
                     "properties": [
                         {"name": "temperature", "desired": {"value": ""}, "visitors": {},
                          "reportCycle": 10000, "collectCycle": 10000, "reportToCloud": True},
                         {"name": "target", "desired": {"value": target}, "visitors": {},
                          "reportToCloud": True}]}}


def membership(hub: Hub, node: str, after: int, key: str, dev_id: str):  # type: ignore[no-untyped-def]
    return hub.downstream(
        node, "membership", "update", after=after,
        where=lambda m: any(d["id"] == dev_id for d in (m.content.get(key) or [])))


async def test_device_lifecycle(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("dev")
    node = await hub.edge_node()
    c = hub.client
    await c.create(DEVICEMODELS, model("thermo-model"), ns)
    mark = hub.mark()
    created = await c.create(DEVICES, device("thermo-1", node, "thermo-model"), ns)

    mem = await membership(hub, node, mark, "added_devices", f"{ns}/thermo-1")
    assert (mem.source, mem.group) == ("devicecontroller", "twin")
    assert mem.content["added_devices"] == [
        {"id": f"{ns}/thermo-1", "name": "thermo-1", "description": "a thermometer"}]
    assert mem.content["removed_devices"] is None and mem.resource_version == ""
    dm = await hub.downstream(node, f"{ns}/devicemodel/thermo-model", "insert", after=mark)
    assert dm.content["kind"] == "DeviceModel"
    assert dm.content["apiVersion"] == "devices.kubeedge.io/v1beta1"
    assert (dm.source, dm.group) == ("devicecontroller", "resource") and dm.resource_version
    dev = await hub.downstream(node, f"{ns}/device/thermo-1", "insert", after=mark)
    assert dev.content["kind"] == "Device" and dev.resource_version
    # Order as KubeEdge: membership, model, device.
    order = [m.resource for m in hub.to_node(node, mark)]
    assert order.index("membership") < order.index(f"{ns}/devicemodel/thermo-model") \
        < order.index(f"{ns}/device/thermo-1")

    # A DeviceStatus owned by the device.
    status = await eventually(lambda: _get(c, DEVICESTATUSES, "thermo-1", ns))
    owner = status["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Device", "thermo-1", created["metadata"]["uid"])
    assert owner["controller"] is True

    # The edge reports a value (devices capture): DeviceStatus gets it; confirmed.
    report = {"event_id": "7bd718ec-38c4-4352-83ed-a4c2f1a08727", "timestamp": 1795304883599,
              "twin": {"temperature": {"actual": {"value": "19.5",
                                                  "metadata": {"timestamp": 1795304883598}},
                                       "expected": {"value": "",
                                                    "metadata": {"timestamp": 1795304883500}},
                                       "optional": True, "metadata": {"type": "float"},
                                       "actual_version": {"cloud": 0, "edge": 1}},
                       "not-a-property": {"actual": {"value": "x"}}}}
    confirm = await hub.request(node, f"device/{ns}/thermo-1/twin/edge_updated", "update",
                                report, source="twin", group="resource",
                                to_group="devicecontroller")
    assert (confirm.source, confirm.group, confirm.resource, confirm.operation,
            confirm.content) == ("devicecontroller", "twin", "twin", "response", "OK")
    status = await c.get(DEVICESTATUSES, "thermo-1", ns)
    twins = {t["propertyName"]: t for t in status["status"]["twins"]}
    assert set(twins) == {"temperature"}
    assert twins["temperature"]["reported"] == {
        "value": "19.5", "metadata": {"timestamp": "1795304883598", "type": "float"}}
    assert twins["temperature"]["observedDesired"]["value"] == ""

    # A second report keeps the first twin's fields it does not mention.
    report2 = {"event_id": "e2", "timestamp": 1,
               "twin": {"target": {"actual": {"value": "20"}, "metadata": {"type": "float"}}}}
    await hub.request(node, f"device/{ns}/thermo-1/twin/edge_updated", "update", report2,
                      source="twin", group="resource", to_group="devicecontroller")
    twins = {t["propertyName"]: t for t in
             (await c.get(DEVICESTATUSES, "thermo-1", ns))["status"]["twins"]}
    assert twins["temperature"]["reported"]["value"] == "19.5"
    assert twins["target"]["reported"]["value"] == "20"

    # Device state arrives as a JSON string.
    state = json.dumps({"event_id": "s1", "timestamp": 2, "device": {
        "name": "thermo-1", "state": "online", "lastOnlineTime": "2026-11-22T00:00:00Z"}})
    confirm = await hub.request(node, f"device/{ns}/thermo-1/state/update", "update", state,
                                source="twin", group="resource", to_group="devicecontroller")
    assert confirm.content == "OK" and confirm.parent_id
    st = (await c.get(DEVICESTATUSES, "thermo-1", ns))["status"]
    assert (st["state"], st["lastOnlineTime"]) == ("online", "2026-11-22T00:00:00Z")

    # Desired value changed in the cloud: the device is updated on the edge.
    mark = hub.mark()
    await c.patch(DEVICES, "thermo-1", {"spec": {"properties": device(
        "thermo-1", node, "thermo-model", target="25")["spec"]["properties"]}}, ns)
    upd = await hub.downstream(node, f"{ns}/device/thermo-1", "update", after=mark)
    assert upd.content["spec"]["properties"][1]["desired"]["value"] == "25"

    # Deleted: model (last user), membership removed, device delete; status removed.
    mark = hub.mark()
    await c.delete(DEVICES, "thermo-1", ns)
    await hub.downstream(node, f"{ns}/devicemodel/thermo-model", "delete", after=mark)
    mem = await membership(hub, node, mark, "removed_devices", f"{ns}/thermo-1")
    assert mem.content["removed_devices"] == [{"id": f"{ns}/thermo-1", "name": "thermo-1"}]
    assert mem.content["added_devices"] is None
    await hub.downstream(node, f"{ns}/device/thermo-1", "delete", after=mark)
    order = [m.resource for m in hub.to_node(node, mark)]
    assert order.index(f"{ns}/devicemodel/thermo-model") < order.index("membership") \
        < order.index(f"{ns}/device/thermo-1")

    async def status_gone() -> bool:
        return await _get(c, DEVICESTATUSES, "thermo-1", ns) is None

    await eventually(status_gone)


async def test_device_moves_to_another_node(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("move")
    old = await hub.edge_node("old")
    new = await hub.edge_node("new")
    c = hub.client
    await c.create(DEVICEMODELS, model("m"), ns)
    await c.create(DEVICES, device("d1", old, "m"), ns)
    await c.create(DEVICES, device("d2", old, "m"), ns)
    await hub.downstream(old, f"{ns}/device/d2", "insert")
    models_sent = [m for m in hub.to_node(old) if m.resource == f"{ns}/devicemodel/m"]
    assert [m.operation for m in models_sent] == ["insert"]  # once per node, not per device

    mark = hub.mark()
    await c.patch(DEVICES, "d1", {"spec": {"nodeName": new}}, ns)
    # Old node: removed, the device deleted; the model stays (d2 still uses it).
    await membership(hub, old, mark, "removed_devices", f"{ns}/d1")
    await hub.downstream(old, f"{ns}/device/d1", "delete", after=mark)
    # New node: added, model, device.
    await membership(hub, new, mark, "added_devices", f"{ns}/d1")
    await hub.downstream(new, f"{ns}/devicemodel/m", "insert", after=mark)
    moved = await hub.downstream(new, f"{ns}/device/d1", "insert", after=mark)
    assert moved.content["spec"]["nodeName"] == new
    assert not [m for m in hub.to_node(old, mark) if m.resource == f"{ns}/devicemodel/m"]

    # The model changes: both nodes using it get the update.
    mark = hub.mark()
    await c.patch(DEVICEMODELS, "m", {"spec": {"protocol": "modbus"}}, ns)
    for node in (old, new):
        upd = await hub.downstream(node, f"{ns}/devicemodel/m", "update", after=mark)
        assert upd.content["spec"]["protocol"] == "modbus"

    # Moving d2 away too: now the old node loses the model as well.
    mark = hub.mark()
    await c.patch(DEVICES, "d2", {"spec": {"nodeName": new}}, ns)
    await hub.downstream(old, f"{ns}/devicemodel/m", "delete", after=mark)
    await hub.downstream(new, f"{ns}/device/d2", "insert", after=mark)


async def test_report_for_unknown_device_and_membership_detail(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("unk")
    node = await hub.edge_node()
    confirm = await hub.request(node, f"device/{ns}/ghost/twin/edge_updated", "update",
                                {"twin": {"x": {"actual": {"value": "1"}}}}, source="twin",
                                group="resource", to_group="devicecontroller")
    assert confirm.content == "OK"  # nothing to apply; resending would not help
    msg: Message = await hub.notify(node, "membership/detail", "get", "{}", source="twin",
                                    group="resource", to_group="devicecontroller")
    # Ignored as KubeEdge does; a later request is still answered (not stuck).
    later = await hub.request(node, f"device/{ns}/ghost/state/update", "update",
                              '{"device":{"state":"offline"}}', source="twin",
                              group="resource", to_group="devicecontroller")
    assert later.content == "OK"
    assert not [s for s in hub.seen if s.wire.parent_id == msg.msg_id]


async def test_a_node_cannot_report_for_a_device_bound_to_another(hub: Hub) -> None:
    # The node comes from the connection; a report about another node's device
    # must not change that device's status.
    ns = await hub.kube_api.make_namespace("owner")
    owner, intruder = await hub.edge_node("owner"), await hub.edge_node("intruder")
    c = hub.client
    await c.create(DEVICEMODELS, model("m"), ns)
    await c.create(DEVICES, device("d1", owner, "m"), ns)
    before = await eventually(lambda: _get(c, DEVICESTATUSES, "d1", ns))
    confirm = await hub.request(
        intruder, f"device/{ns}/d1/twin/edge_updated", "update",
        {"twin": {"temperature": {"actual": {"value": "99"}}}},
        source="twin", group="resource", to_group="devicecontroller")
    assert confirm.content == "OK"  # answered, so the edge does not resend it
    await hub.request(
        intruder, f"device/{ns}/d1/state/update", "update", {"device": {"state": "offline"}},
        source="twin", group="resource", to_group="devicecontroller")
    after = await c.get(DEVICESTATUSES, "d1", ns)
    assert after.get("status") == before.get("status")
    # the owner still can
    await hub.request(
        owner, f"device/{ns}/d1/state/update", "update", {"device": {"state": "online"}},
        source="twin", group="resource", to_group="devicecontroller")
    assert (await c.get(DEVICESTATUSES, "d1", ns))["status"]["state"] == "online"


async def _get(c: kubeclient.KubeClient, ref: kubeclient.ResourceRef, name: str,
               ns: str) -> dict[str, Any] | None:
    try:
        return await c.get(ref, name, ns)
    except kubeclient.NotFound:
        return None
