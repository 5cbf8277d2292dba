"""Pods come back after an edge reboot while the cloud is unreachable.

design.md section 6: "Pods do not come back after an edge reboot while the
cloud is unreachable". cloudcore is stopped; then edgecore and the private
containerd are stopped and every sandbox and container removed, as a reboot
leaves the runtime. containerd and edgecore start again with the cloud still
away: edged recreates the pod from metamanager's SQLite store (the pod, its
configmap and its secret) and its container runs. cloudcore returns: the node is
Ready and the new container's status reaches the API server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import kubeclient
from e2e.helpers import IDLE, busybox, configmap, create, pod, secret
from e2e.resilience import BlipStack, make_namespace, start_blip_stack, stop_blip_stack, stored
from edgecore.edged.cri import CRIClient, pb
from keadm.devstack import wait_for
from keadm.devstack.crilog import read_container_log
from keadm.devstack.workload import POD_UID_LABEL, container_id, is_running_and_ready

pytestmark = [pytest.mark.e2e, pytest.mark.containerd, pytest.mark.asyncio(loop_scope="module")]

LINE = "reboot greeting=from-sqlite password=also-sqlite"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def reboot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BlipStack]:
    bs = await start_blip_stack(tmp_path_factory.mktemp("reboot"), proxy=False)
    try:
        yield bs
    finally:
        await stop_blip_stack(bs)


async def test_pods_come_back_after_reboot_without_cloud(reboot: BlipStack) -> None:
    stack, node = reboot.stack, reboot.stack.node_name
    ns = await make_namespace(stack, "reboot")
    await create(stack, kubeclient.CONFIGMAPS,
                 configmap(ns, "boot-config", {"greeting": "from-sqlite"}))
    await create(stack, kubeclient.SECRETS, secret(ns, "boot-secret", {"password": "also-sqlite"}))
    script = 'echo "reboot greeting=$(cat /etc/boot/greeting) password=$PASSWORD"; ' + IDLE
    container = busybox(
        "app", script,
        env=[{"name": "PASSWORD",
              "valueFrom": {"secretKeyRef": {"name": "boot-secret", "key": "password"}}}],
        volumeMounts=[{"name": "config", "mountPath": "/etc/boot"}],
    )
    await create(stack, kubeclient.PODS, pod(
        ns, "survivor", node, [container], restartPolicy="Always",
        volumes=[{"name": "config", "configMap": {"name": "boot-config"}}],
    ))
    p = await stack.wait_pod(ns, "survivor", is_running_and_ready,
                             what="to be Running and Ready", timeout=60)
    uid, before = p["metadata"]["uid"], container_id(p, "app")
    assert before

    # --- the reboot, with the cloud away ----------------------------------------------
    await stack.stop_cloudcore()
    await stack.stop_edgecore()
    ctrd = stack.containerd
    assert ctrd is not None
    await ctrd.stop(remove_pods=True)  # a reboot leaves no sandbox nor container
    await ctrd.start()
    async with CRIClient(stack.runtime_endpoint) as cri:
        assert list(await cri.list_pod_sandbox()) == []
        assert list(await cri.list_containers()) == []
        # What the edge has to go on is only its SQLite store.
        assert {"survivor"} <= stored(stack, ns, "pod").keys()
        await stack.start_edgecore(wait_ready=False)

        async def recreated() -> str | None:
            sandboxes = await cri.list_pod_sandbox(labels={POD_UID_LABEL: uid})
            if len(sandboxes) != 1:
                return None
            for c in await cri.list_containers(labels={POD_UID_LABEL: uid}):
                if (c.state == pb.ContainerState.CONTAINER_RUNNING
                        and LINE in await read_container_log(cri, c.id)):
                    return str(c.id)
            return None

        after = await wait_for(recreated, what="edged to recreate the pod from SQLite offline",
                               timeout=60, guard=stack._guard)
        assert after != before

    # --- the cloud returns ------------------------------------------------------------
    await stack.start_cloudcore()
    await stack.wait_node_ready(timeout=60)
    p = await stack.wait_pod(
        ns, "survivor", lambda q: container_id(q, "app") == after and is_running_and_ready(q),
        what="to report the recreated container", timeout=60,
    )
    assert p["metadata"]["uid"] == uid
