"""Watches break and history is compacted: after the re-list no edge misses a change."""

from __future__ import annotations

from fixtures.controller_hub import Hub, eventually
from kubeclient import CONFIGMAPS, DEVICEMODELS, DEVICES, PODS

from .test_devicecontroller import device, model
from .test_edgecontroller_pods import cm, pod


async def test_changes_while_watches_are_down_reach_the_edges(hub: Hub) -> None:
    ns = await hub.kube_api.make_namespace("relist")
    node = await hub.edge_node()
    other = await hub.edge_node("other")
    c = hub.client
    await c.create(CONFIGMAPS, cm("conf", v="1"), ns)
    await c.create(PODS, pod("keeper", node, env_from=[{"configMapRef": {"name": "conf"}}]), ns)
    await c.create(PODS, pod("doomed", node), ns)
    await c.create(DEVICEMODELS, model("m"), ns)
    await c.create(DEVICES, device("mover", node, "m"), ns)
    await hub.downstream(node, f"{ns}/pod/doomed", "insert")
    await hub.downstream(node, f"{ns}/device/mover", "insert")
    lists_before = hub.ec.pods.list_count  # type: ignore[union-attr]

    hub.proxy.pause_watches()  # every open watch ends; new ones are held
    mark = hub.mark()
    await c.delete(PODS, "doomed", ns, body={"gracePeriodSeconds": 0})
    await c.create(PODS, pod("newcomer", node), ns)
    await c.patch(CONFIGMAPS, "conf", {"data": {"v": "2"}}, ns)
    await c.patch(DEVICES, "mover", {"spec": {"nodeName": other}}, ns)
    if hub.kube_api.can_compact:
        # devkube forgets its history: the held watches resume from versions it
        # no longer has and get a genuine 410 Expired.
        await hub.kube_api.compact()
        hub.proxy.resume_watches(gone=False)
    else:
        hub.proxy.resume_watches(gone=True)

    await hub.downstream(node, f"{ns}/pod/doomed", "delete", after=mark)
    await hub.downstream(node, f"{ns}/pod/newcomer", "insert", after=mark)
    upd = await hub.downstream(node, f"{ns}/configmap/conf", "update", after=mark)
    assert upd.content["data"] == {"v": "2"}
    await hub.downstream(node, f"{ns}/device/mover", "delete", after=mark)
    await hub.downstream(other, f"{ns}/device/mover", "insert", after=mark)
    await eventually(lambda: hub.ec.pods.list_count > lists_before)  # type: ignore[union-attr]

    # And the informers watch again afterwards.
    mark = hub.mark()
    await c.patch(CONFIGMAPS, "conf", {"data": {"v": "3"}}, ns)
    await hub.downstream(node, f"{ns}/configmap/conf", "update", after=mark,
                         where=lambda m: m.content["data"] == {"v": "3"})
