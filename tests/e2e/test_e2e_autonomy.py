"""Edge autonomy: the edge keeps its pods while the cloud is away, and catches up.

cloudcore is stopped, edgecore restarted while the cloud is unreachable: the
pod's sandbox and container keep running, and when the container dies edged
restarts it by policy from what metamanager has in SQLite (the pod, its
configmap and its secret). Meanwhile the test marks the Node's Ready condition
Unknown, as a real cluster's node lifecycle controller would. cloudcore comes
back: the edge turns the node Ready again and the pod's new status reaches the
API server, with no edgecore restart (design.md section 6: "Edge node stays
NotReady after a network blip until edgecore is restarted").
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

import kubeclient
from e2e.helpers import IDLE, busybox, configmap, create, pod, restart_count, secret
from edgecore.edged.cri import CRIClient, pb
from keadm.devstack import DevStack, wait_for
from keadm.devstack.crilog import read_container_log
from keadm.devstack.workload import POD_UID_LABEL, container_id, is_running_and_ready

pytestmark = [pytest.mark.e2e, pytest.mark.containerd, pytest.mark.asyncio(loop_scope="module")]

LINE = "auto greeting=kept-locally password=kept-secret"


def stored_keys(stack: DevStack) -> set[str]:
    """The keys of metamanager's local store (read-only, beside the running edgecore)."""
    uri = f"file:{stack.edge_paths.database}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as db:
        return {row[0] for row in db.execute("SELECT key FROM meta")}


async def mark_node_unknown(stack: DevStack) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    unknown = {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
               "message": "Kubelet stopped posting node status.",
               "lastHeartbeatTime": now, "lastTransitionTime": now}
    await stack.client().patch(kubeclient.NODES, stack.node_name,
                               {"status": {"conditions": [unknown]}},
                               patch_type="strategic", subresource="status")
    node = await stack.node()
    assert node is not None and stack.ready_condition(node)["status"] == "Unknown"


async def test_pod_survives_cloud_outage_and_edgecore_restart(
    edge_stack: DevStack, namespace: str
) -> None:
    ns, node = namespace, edge_stack.node_name
    await create(edge_stack, kubeclient.CONFIGMAPS,
                 configmap(ns, "auto-config", {"greeting": "kept-locally"}))
    await create(edge_stack, kubeclient.SECRETS,
                 secret(ns, "auto-secret", {"password": "kept-secret"}))
    script = 'echo "auto greeting=$(cat /etc/auto/greeting) password=$PASSWORD"; ' + IDLE
    container = busybox(
        "app", script,
        env=[{"name": "PASSWORD",
              "valueFrom": {"secretKeyRef": {"name": "auto-secret", "key": "password"}}}],
        volumeMounts=[{"name": "config", "mountPath": "/etc/auto"}],
    )
    await create(edge_stack, kubeclient.PODS, pod(
        ns, "auto", node, [container], restartPolicy="Always",
        volumes=[{"name": "config", "configMap": {"name": "auto-config"}}],
    ))
    p = await edge_stack.wait_pod(ns, "auto", is_running_and_ready,
                                  what="to be Running and Ready", timeout=60)
    uid = p["metadata"]["uid"]
    first = container_id(p, "app")
    assert first

    async with CRIClient(edge_stack.runtime_endpoint) as cri:
        sandboxes = [s.id for s in await cri.list_pod_sandbox(labels={POD_UID_LABEL: uid})]
        assert len(sandboxes) == 1

        await edge_stack.stop_cloudcore()
        # What the node lifecycle controller of a real cluster does to a node
        # that stopped reporting; the edge must turn it Ready again by itself.
        await mark_node_unknown(edge_stack)
        await edge_stack.restart_edgecore(wait_ready=False)
        assert edge_stack.edgecore is not None
        edge_pid = edge_stack.edgecore.pid

        # edgecore came back without the cloud; the container was not touched.
        status = await cri.container_status(first)
        assert status.state == pb.ContainerState.CONTAINER_RUNNING
        # metamanager still knows the pod and what it needs, from SQLite.
        keys = stored_keys(edge_stack)
        assert {f"{ns}/pod/auto", f"{ns}/configmap/auto-config",
                f"{ns}/secret/auto-secret"} <= keys

        # The container dies while the cloud is away: restarted by policy, with its
        # configmap and secret answered by metamanager from the local store.
        await cri.stop_container(first, 0)

        async def replacement() -> str | None:
            for c in await cri.list_containers(labels={POD_UID_LABEL: uid}):
                running = c.state == pb.ContainerState.CONTAINER_RUNNING
                if c.id != first and running and LINE in await read_container_log(cri, c.id):
                    return str(c.id)
            return None

        second = await wait_for(replacement, what="edged to restart the container offline",
                                timeout=60, guard=edge_stack._guard)
        # Same sandbox: edged adopted the running pod instead of recreating it.
        assert [s.id for s in await cri.list_pod_sandbox(labels={POD_UID_LABEL: uid})] == sandboxes

    # The cloud returns: the node is Ready again and the pod's status catches up.
    await edge_stack.start_cloudcore()
    await edge_stack.wait_node_ready(timeout=90)
    p = await edge_stack.wait_pod(
        ns, "auto",
        lambda q: container_id(q, "app") == second and restart_count(q, "app") >= 1
        and is_running_and_ready(q),
        what="to report the restarted container", timeout=90,
    )
    assert edge_stack.edgecore is not None and edge_stack.edgecore.pid == edge_pid
