"""The edged beehive module: pods arrive from metamanager, the node registers.

Real path below the WebSocket: cloud stand-in -> metamanager (SQLite, acks)
-> ``ctx.send("edged", msg)`` -> edged -> containerd, and back through
MetaClient -> metamanager -> the cloud stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from pathlib import Path
from typing import Any

import pytest

from beehive import constants as c
from edgecore.edged import labels as L
from edgecore.edged.cri import CRIClient
from edgecore.edged.devcontainerd import DevContainerd
from edgecore.edged.module import Edged
from edged.helpers import EdgeStack, make_pod, make_settings, wait_for

pytestmark = pytest.mark.containerd


async def test_module_registers_node_and_runs_pods_from_metamanager(
    containerd: DevContainerd, cri: CRIClient, tmp_path: Path
) -> None:
    stack = await EdgeStack.start(tmp_path / "edgecore.db", with_edged_queue=True)
    settings = make_settings(
        containerd,
        tmp_path / "kubelet",
        node_status_update_frequency=0.3,
        node_lease_duration=2,
    )
    edged = Edged(settings)
    task = asyncio.create_task(edged.start(stack.ctx))
    name = settings.node_name
    try:
        # Registration: KubeEdge's labels, machine capacity, the runtime's version.
        node = await wait_for(lambda: stack.cloud.nodes.get(name), what="node registered")
        labels = node["metadata"]["labels"]
        assert labels["node-role.kubernetes.io/edge"] == ""
        assert labels["node-role.kubernetes.io/agent"] == ""
        assert labels["kubernetes.io/hostname"] == name
        assert int(node["status"]["capacity"]["cpu"]) >= 1
        assert node["status"]["capacity"]["memory"].endswith("Ki")
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
        ready = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
        assert ready["status"] == "True" and ready["reason"] == "EdgeReady"

        # Lease: looked up, created (owned by the node), then renewed; as in the capture.
        await wait_for(lambda: len(stack.cloud.ops("lease")) >= 3, what="lease renewed")
        assert stack.cloud.ops("lease")[:3] == ["query", "insert", "update"]
        lease = stack.cloud.leases[name]
        assert lease["spec"]["holderIdentity"] == name
        assert lease["spec"]["leaseDurationSeconds"] == 2
        assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]

        # A pod from the cloud runs, and its status goes back up.
        await stack.put(
            "configmap",
            {
                "kind": "ConfigMap",
                "metadata": {"name": "m-cm", "namespace": "default"},
                "data": {"greeting": "hi"},
            },
        )
        pod = make_pod(
            "m-pod",
            [
                {
                    "name": "c",
                    "image": "docker.io/library/busybox:latest",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "cat /cfg/greeting; exec sleep 3600"],
                    "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
                }
            ],
            volumes=[{"name": "cfg", "configMap": {"name": "m-cm"}}],
            nodeName=name,
        )
        uid = pod["metadata"]["uid"]
        await stack.cloud.send_down(c.OP_INSERT, pod, "pod")

        def running() -> dict[str, Any] | None:
            for p in stack.cloud.pod_patches("m-pod"):
                if p["status"].get("phase") == "Running":
                    return p
            return None

        patch = await wait_for(running, what="Running reported to the cloud")
        assert patch["metadata"]["uid"] == uid

        # Deletion from the cloud: deletionTimestamp, edged stops it and deletes it,
        # the cloud's delete removes containers and sandbox.
        dying = copy.deepcopy(pod)
        dying["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        dying["metadata"]["deletionGracePeriodSeconds"] = 1
        await stack.cloud.send_down(c.OP_UPDATE, dying, "pod")
        await wait_for(stack.cloud.deleted_pods, what="pod deletion requested")
        await stack.cloud.send_down(c.OP_DELETE, dying, "pod")
        sel = {**L.owned(name), L.POD_UID: uid}

        async def gone() -> bool:
            return not await cri.list_pod_sandbox(sel) and not await cri.list_containers(sel)

        await wait_for(gone, what="pod removed from containerd")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await edged.cleanup()
        await stack.stop()
        for sb in await cri.list_pod_sandbox(L.owned(name)):
            await cri.stop_pod_sandbox(sb.id)
            await cri.remove_pod_sandbox(sb.id)


async def test_node_already_registered_is_read_back(
    containerd: DevContainerd, cri: CRIClient, tmp_path: Path
) -> None:
    from edgecore.edged.node import NodeAgent

    stack = await EdgeStack.start(tmp_path / "edgecore.db")
    try:
        settings = make_settings(containerd, tmp_path / "kubelet")
        existing = {
            "metadata": {"name": settings.node_name, "uid": "node-uid-1", "labels": {}},
            "status": {"conditions": []},
        }
        stack.cloud.nodes[settings.node_name] = existing
        agent = NodeAgent(cri, stack.meta, settings)
        await agent.register()
        assert stack.cloud.ops("node") == ["insert", "query"]  # AlreadyExists -> get
        assert agent.node is not None and agent.node["metadata"]["uid"] == "node-uid-1"
        assert await agent.renew_lease()
        assert stack.cloud.ops("lease") == ["query", "insert"]
        lease = stack.cloud.leases[settings.node_name]
        assert lease["metadata"]["ownerReferences"][0]["uid"] == "node-uid-1"
        assert await agent.report_status()  # the stored node had no conditions: a patch
        patch = stack.cloud.node_patches()[-1]
        assert {x["type"] for x in patch["status"]["conditions"]} == {
            "MemoryPressure",
            "DiskPressure",
            "PIDPressure",
            "Ready",
        }
        assert not await agent.report_status()  # nothing changed: nothing sent
    finally:
        await stack.stop()


async def test_ready_changed_in_the_cloud_is_reported_again(
    containerd: DevContainerd, cri: CRIClient, tmp_path: Path
) -> None:
    # The node lifecycle controller (or cloudcore's health check) marked the node
    # Unknown while the edge stayed connected: the next status period sets Ready
    # True again, instead of waiting for the 5-minute full report.
    from edgecore.edged.node import NodeAgent

    stack = await EdgeStack.start(tmp_path / "edgecore.db")
    try:
        settings = make_settings(containerd, tmp_path / "kubelet")
        agent = NodeAgent(cri, stack.meta, settings)
        await agent.register()
        assert await agent.report_status()
        assert not await agent.report_status()
        node = stack.cloud.nodes[settings.node_name]
        node["status"] = copy.deepcopy(agent.reported)
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond.update(status="Unknown", reason="NodeStatusUnknown")
        assert await agent.report_status()
        patch = stack.cloud.node_patches()[-1]
        ready = next(x for x in patch["status"]["conditions"] if x["type"] == "Ready")
        assert ready["status"] == "True" and ready["reason"] == "EdgeReady"
        assert not await agent.report_status()  # and then nothing more to say
    finally:
        await stack.stop()


async def test_bad_messages_are_logged_not_fatal(
    containerd: DevContainerd, cri: CRIClient, tmp_path: Path
) -> None:
    from beehive.message import Message

    stack = await EdgeStack.start(tmp_path / "edgecore.db", with_edged_queue=True)
    settings = make_settings(containerd, tmp_path / "kubelet")
    edged = Edged(settings)
    task = asyncio.create_task(edged.start(stack.ctx))
    try:
        await wait_for(
            lambda: edged.runtime is not None and edged.node is not None, what="edged started"
        )
        runtime = edged.runtime
        assert runtime is not None
        bad = [
            Message.new(
                source="metamanager",
                group="meta",
                operation="insert",
                resource="no-type",
                content={},
            ),
            Message.new(
                source="metamanager",
                group="meta",
                operation="insert",
                resource="default/pod/x",
                content="not a pod",
            ),
            Message.new(
                source="metamanager",
                group="meta",
                operation="insert",
                resource="default/pod/y",
                content={"metadata": {"name": "y"}},
            ),
        ]
        for msg in bad:
            await stack.ctx.send("edged", msg)
        pod = make_pod(
            "legacy",
            [
                {
                    "name": "c",
                    "image": "busybox",
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                }
            ],
            nodeName=settings.node_name,
        )
        uid = pod["metadata"]["uid"]
        await stack.ctx.send(
            "edged",
            Message.new(
                source="metamanager",
                group="meta",
                operation="insert",
                resource="default/pod/legacy",
                content=pod,
            ),
        )
        await wait_for(lambda: uid in runtime.pods, what="pod accepted after bad messages")
        # The legacy delete form carries the pod UID as a plain string.
        await stack.ctx.send(
            "edged",
            Message.new(
                source="metamanager",
                group="meta",
                operation="delete",
                resource="default/pod/legacy",
                content=uid,
            ),
        )
        await wait_for(lambda: uid not in runtime.pods, what="legacy delete applied")
        assert not task.done()
        sel = {**L.owned(settings.node_name), L.POD_UID: uid}

        async def gone() -> bool:
            return not await cri.list_pod_sandbox(sel) and not await cri.list_containers(sel)

        await wait_for(gone, what="legacy-deleted pod removed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await edged.cleanup()
        await stack.stop()


async def test_messages_during_shutdown_are_dropped_not_crashed(
    containerd: DevContainerd, cri: CRIClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """beehive cleans a module up before it cancels its body (SIGTERM), so a message can
    reach the receive loop after ``cleanup``: it is dropped with an info line (the store
    has it; the next start applies it), never an AssertionError."""
    import logging

    from beehive.message import Message

    stack = await EdgeStack.start(tmp_path / "edgecore.db", with_edged_queue=True)
    settings = make_settings(containerd, tmp_path / "kubelet")
    edged = Edged(settings)
    task = asyncio.create_task(edged.start(stack.ctx))
    caplog.set_level(logging.INFO, logger="edgecore.edged.module")
    try:
        await wait_for(
            lambda: edged.runtime is not None and edged.node is not None, what="edged started"
        )
        await edged.cleanup()  # what Runtime._shutdown does first
        pod = make_pod("late", [{"name": "c", "image": "busybox", "command": ["true"]}])
        msg = Message.new(
            source="metamanager",
            group="meta",
            operation="insert",
            resource="default/pod/late",
            content=pod,
        )
        await stack.ctx.send("edged", msg)

        def seen() -> list[logging.LogRecord]:
            return [r for r in caplog.records if msg.msg_id in r.getMessage()]

        records = await wait_for(seen, what="the late message handled")
        assert [r.levelname for r in records] == ["INFO"]
        assert "dropping" in records[0].getMessage()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not task.done()  # the loop keeps draining until it is cancelled
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await edged.cleanup()
        await stack.stop()
