"""The whole edge on the wire: edgehub (mutual TLS WebSocket) + metamanager + edged.

The cloud is ``minicloud`` (tests/fixtures/minicloud.py: real TLS, real
WebSocket, our codec) answering edged's requests as cloudcore does; the pods
run on the private containerd. Covers edge autonomy: with the cloud gone,
edgecore is restarted, the pod comes back from SQLite with the same container,
and when the cloud returns the node reports again and the kept status flows.
"""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from beehive import constants as c
from beehive.message import Message
from edgecore.edged import labels as L
from edgecore.edged.cri import CRIClient
from edgecore.edged.devcontainerd import DevContainerd
from edgecore.edged.module import Edged
from edged.helpers import CloudAnswers, container_status, make_pod, make_settings, wait_for
from fixtures.minicloud import EdgeRunner, MiniCloud, edge_settings

pytestmark = pytest.mark.containerd


def _down(operation: str, kind: str, obj: dict[str, Any]) -> Message:
    meta = obj["metadata"]
    return Message.new(
        source=c.MOD_EDGECONTROLLER,
        group="resource",
        operation=operation,
        resource=f"{meta.get('namespace', 'default')}/{kind}/{meta['name']}",
        content=copy.deepcopy(obj),
        resource_version="1",
    )


def _phase_running(patches: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((p for p in patches if p["status"].get("phase") == "Running"), None)


async def test_pod_over_the_wire_survives_edgecore_restart_without_cloud(
    minicloud: MiniCloud, containerd: DevContainerd, cri: CRIClient, tmp_path: Path
) -> None:
    node = f"wire-{uuid.uuid4().hex[:6]}"
    answers = CloudAnswers()
    minicloud.responder = answers.respond
    db = tmp_path / "edgecore.db"
    settings = make_settings(
        containerd, tmp_path / "kubelet", node_name=node, node_status_update_frequency=0.5
    )
    configmap = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "w-cm", "namespace": "default", "uid": "cm-1"},
        "data": {"greeting": "hello over the wire"},
    }
    answers.configmaps[("default", "w-cm")] = configmap
    pod = make_pod(
        "w-pod",
        [
            {
                "name": "c",
                "image": "kubeedge-py.local/busybox:latest",
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "cat /cfg/greeting; exec sleep 3600"],
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
            }
        ],
        volumes=[{"name": "cfg", "configMap": {"name": "w-cm"}}],
        nodeName=node,
    )
    uid = pod["metadata"]["uid"]
    sel = {**L.owned(node), L.POD_UID: uid}
    try:
        async with EdgeRunner(
            edge_settings(minicloud, tmp_path, node=node), db, probes=[Edged(settings)]
        ):
            await wait_for(lambda: node in answers.nodes, what="node registered over the wire")
            await minicloud.send(_down(c.OP_INSERT, "configmap", configmap))
            await minicloud.send(_down(c.OP_INSERT, "pod", pod))
            patch = await wait_for(
                lambda: _phase_running(answers.pod_patches("w-pod")), what="Running on the wire"
            )
            cid = container_status(patch["status"], "c")["containerID"]
            # The edge acked the pod as KubeEdge does.
            assert any(
                a.resource == "default/pod/w-pod" and a.content == "OK" for a in answers.acks
            )
            await minicloud.stop_ws()  # the cloud goes away

        # edgecore restarts while the cloud is unreachable.
        before_restart = len(answers.requests)
        edged2 = Edged(settings)
        async with EdgeRunner(edge_settings(minicloud, tmp_path, node=node), db, probes=[edged2]):

            def adopted() -> dict[str, Any] | None:
                rt = edged2.runtime
                st = rt.pod_status(uid) if rt else None
                return st if st and st.get("phase") == "Running" else None

            st = await wait_for(adopted, what="pod restored from the local store")
            assert container_status(st, "c")["containerID"] == cid  # same container
            assert container_status(st, "c")["restartCount"] == 0
            containers = await cri.list_containers(sel)
            assert [f"containerd://{x.id}" for x in containers] == [cid]
            assert len(answers.requests) == before_restart  # nothing reached the cloud

            # The cloud returns: the node reports again and the kept pod status flows.
            reconnect = time.monotonic()
            await minicloud.start_ws()
            await wait_for(
                lambda: any(
                    t >= reconnect and "/nodepatch/" in m.resource
                    for m, t in zip(minicloud.received, minicloud.received_at, strict=True)
                ),
                what="node status after reconnect",
            )
            await wait_for(
                lambda: any(
                    t >= reconnect and "/podpatch/w-pod" in m.resource
                    for m, t in zip(minicloud.received, minicloud.received_at, strict=True)
                ),
                what="pod status after reconnect",
            )
    finally:
        for sb in await cri.list_pod_sandbox(sel):
            await cri.stop_pod_sandbox(sb.id)
            await cri.remove_pod_sandbox(sb.id)
