"""Pods through the whole stack: API server -> cloudcore -> edgecore -> containerd.

One stack for the module (``edge_stack``); each test has its own namespace.
What is asserted is what a user sees: the pod's status in the API server, and
on the edge the containers, sandboxes and log files the CRI runtime reports.
"""

from __future__ import annotations

from typing import Any

import pytest

import kubeclient
from e2e.helpers import IDLE, busybox, configmap, create, pod, restart_count, secret
from edgecore.edged.cri import CRIClient
from keadm.devstack import DevStack, wait_for
from keadm.devstack.crilog import read_container_log
from keadm.devstack.workload import (
    container_id,
    container_status,
    is_running_and_ready,
    pod_runtime_objects,
    wait_runtime_objects_gone,
)

pytestmark = [pytest.mark.e2e, pytest.mark.containerd, pytest.mark.asyncio(loop_scope="module")]


async def test_node_registers_ready_with_edge_role(edge_stack: DevStack) -> None:
    node = await edge_stack.wait_node_ready()
    labels = node["metadata"].get("labels") or {}
    assert "node-role.kubernetes.io/edge" in labels
    assert labels.get("kubernetes.io/hostname") == edge_stack.node_name


async def test_pod_with_configmap_secret_and_liveness_runs(
    edge_stack: DevStack, namespace: str
) -> None:
    node = edge_stack.node_name
    await create(edge_stack, kubeclient.CONFIGMAPS,
                 configmap(namespace, "app-config", {"greeting": "hello-from-configmap"}))
    await create(edge_stack, kubeclient.SECRETS,
                 secret(namespace, "app-secret", {"password": "s3cret-value"}))
    script = 'echo "greeting=$(cat /etc/app/greeting) password=$PASSWORD"; ' + IDLE
    container = busybox(
        "app", script,
        env=[{"name": "PASSWORD",
              "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}}],
        volumeMounts=[{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
        livenessProbe={"exec": {"command": ["cat", "/etc/app/greeting"]},
                       "periodSeconds": 1, "failureThreshold": 2},
    )
    body = pod(namespace, "app", node, [container],
               volumes=[{"name": "config", "configMap": {"name": "app-config"}}])
    await create(edge_stack, kubeclient.PODS, body)

    p = await edge_stack.wait_pod(namespace, "app", is_running_and_ready,
                                  what="to be Running and Ready", timeout=60)
    status = p["status"]
    assert status.get("podIP")
    assert status.get("startTime")
    cs = container_status(p, "app")
    assert cs is not None and cs["ready"] is True and "running" in cs["state"]
    assert cs["restartCount"] == 0

    cid = container_id(p, "app")
    assert cid
    async with CRIClient(edge_stack.runtime_endpoint) as cri:

        async def logged() -> list[str] | None:
            lines = await read_container_log(cri, cid)
            return lines or None

        lines = await wait_for(logged, what="the container's log line", timeout=20)
    assert lines[0] == "greeting=hello-from-configmap password=s3cret-value"


async def test_failing_liveness_probe_restarts_the_container(
    edge_stack: DevStack, namespace: str
) -> None:
    container = busybox(
        "doomed", IDLE,
        livenessProbe={"exec": {"command": ["cat", "/no/such/file"]},
                       "periodSeconds": 1, "failureThreshold": 1},
    )
    await create(edge_stack, kubeclient.PODS,
                 pod(namespace, "doomed", edge_stack.node_name, [container]))
    p = await edge_stack.wait_pod(
        namespace, "doomed", lambda q: restart_count(q, "doomed") >= 1,
        what="to restart its container after the liveness probe failed", timeout=60,
    )
    cs = container_status(p, "doomed")
    assert cs is not None
    assert "terminated" in (cs.get("lastState") or {})


async def test_crashing_container_restarts_with_backoff(
    edge_stack: DevStack, namespace: str
) -> None:
    container = busybox("crasher", "echo crashing; exit 3")
    await create(edge_stack, kubeclient.PODS,
                 pod(namespace, "crasher", edge_stack.node_name, [container],
                     restartPolicy="Always"))
    seen: dict[str, Any] = {"reasons": set()}

    def crash_looping(q: dict[str, Any]) -> bool:
        cs = container_status(q, "crasher") or {}
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            seen["reasons"].add(waiting["reason"])
        return restart_count(q, "crasher") >= 2

    # The stack's back-off is 2 s doubling (helpers.POD_BACKOFF, set through our
    # modules.edged.podBackoff keys): two restarts take seconds, not kubelet's 10 s+.
    p = await edge_stack.wait_pod(namespace, "crasher", crash_looping,
                                  what="to restart its crashing container twice", timeout=20)
    cs = container_status(p, "crasher")
    assert cs is not None
    last = (cs.get("lastState") or {}).get("terminated") or {}
    assert last.get("exitCode") == 3
    # Between restarts the container waits out its back-off, and the API says so.
    assert "CrashLoopBackOff" in seen["reasons"]
    assert p["status"]["phase"] == "Running"


async def test_deleting_a_pod_removes_its_containers_and_sandbox(
    edge_stack: DevStack, namespace: str
) -> None:
    await create(edge_stack, kubeclient.PODS,
                 pod(namespace, "short", edge_stack.node_name, [busybox("idle", IDLE)]))
    p = await edge_stack.wait_pod(namespace, "short", is_running_and_ready,
                                  what="to be Running and Ready", timeout=60)
    uid = p["metadata"]["uid"]
    async with CRIClient(edge_stack.runtime_endpoint) as cri:
        containers, sandboxes = await pod_runtime_objects(cri, uid)
        assert len(containers) == 1 and len(sandboxes) == 1

        await edge_stack.client().delete(kubeclient.PODS, "short", namespace=namespace)
        await edge_stack.wait_pod_gone(namespace, "short", timeout=60)
        await wait_runtime_objects_gone(cri, uid, timeout=60)
