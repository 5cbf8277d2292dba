"""A network blip between edge and cloud, healed without restarting anything.

design.md section 6: "Edge node stays NotReady after a network blip until
edgecore is restarted" and "Objects changed while an edge was offline never
arrive". A :class:`BlipProxy` carries edgecore's WebSocket to cloudcore; the
test cuts it (both sides closed, new connections refused) for longer than
cloudcore's keepalive timeout and the node grace period, so cloudcore ends the
session and marks the node Unknown. During the cut a container exits on the
edge and configmaps and pods of the node change in the API server. After the
restore, with the same cloudcore and edgecore processes: the node is Ready, the
exit is in the pod's status, and the edge's SQLite store and its containers
match the cluster's latest state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import kubeclient
from e2e.helpers import IDLE, busybox, configmap, create, pod
from e2e.resilience import (
    CLOUD_KEEPALIVE,
    BlipStack,
    make_namespace,
    node_not_ready,
    pending_keys,
    rv,
    start_blip_stack,
    stop_blip_stack,
    stored,
)
from edgecore.edged.cri import CRIClient, pb
from keadm.devstack import wait_for
from keadm.devstack.crilog import read_container_log
from keadm.devstack.workload import POD_UID_LABEL, container_id, is_running_and_ready

pytestmark = [pytest.mark.e2e, pytest.mark.containerd, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def blip(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BlipStack]:
    bs = await start_blip_stack(tmp_path_factory.mktemp("blip"), proxy=True)
    try:
        yield bs
    finally:
        await stop_blip_stack(bs)


def _volume_pod(ns: str, name: str, node: str, cm: str, **spec: Any) -> dict[str, Any]:
    script = f'echo "{name} sees $(cat /etc/cfg/value)"; ' + IDLE
    c = busybox("app", script, volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}])
    return pod(ns, name, node, [c],
               volumes=[{"name": "cfg", "configMap": {"name": cm}}], **spec)


def _terminated(p: dict[str, Any]) -> bool:
    for cs in (p.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == "app" and "terminated" in (cs.get("state") or {}):
            return True
    return False


async def test_blip_heals_without_restarts_and_offline_changes_arrive(blip: BlipStack) -> None:
    stack, proxy = blip.stack, blip.proxy
    assert proxy is not None and stack.edgecore is not None and stack.cloudcore is not None
    pids = (stack.edgecore.pid, stack.cloudcore.pid)
    kube, node = stack.client(), stack.node_name
    ns = await make_namespace(stack, "blip")
    loop = asyncio.get_running_loop()

    # Before the cut: configmaps used by pods of the node, so the edge holds them.
    await create(stack, kubeclient.CONFIGMAPS, configmap(ns, "cm-upd", {"value": "v1"}))
    await create(stack, kubeclient.CONFIGMAPS, configmap(ns, "cm-del", {"value": "old"}))
    await create(stack, kubeclient.PODS, _volume_pod(ns, "exits", node, "cm-upd",
                                                     restartPolicy="Never"))
    await create(stack, kubeclient.PODS, _volume_pod(ns, "doomed", node, "cm-del"))
    await create(stack, kubeclient.PODS, _volume_pod(ns, "relabel", node, "cm-upd"))
    await create(stack, kubeclient.PODS, _volume_pod(ns, "phoenix", node, "cm-upd"))
    running: dict[str, dict[str, Any]] = {}
    for name in ("exits", "doomed", "relabel", "phoenix"):
        running[name] = await stack.wait_pod(ns, name, is_running_and_ready,
                                             what="to be Running and Ready", timeout=60)
    assert {"cm-upd", "cm-del"} <= stored(stack, ns, "configmap").keys()
    accepted = proxy.accepted

    async with CRIClient(stack.runtime_endpoint) as cri:
        # --- the cut -------------------------------------------------------------------
        await proxy.cut()
        cut_at = loop.time()
        cond = await wait_for(lambda: node_not_ready(stack), what="the node to leave Ready",
                              timeout=30, guard=stack._guard)
        assert cond["status"] in ("Unknown", "False")

        # A container exits on the edge while the cloud cannot hear it.
        exits_id = container_id(running["exits"], "app")
        assert exits_id
        await cri.stop_container(exits_id, 0)
        async def exit_kept() -> bool:
            return any(k.startswith(f"{ns}/") and k.endswith("/exits")
                       for k in pending_keys(stack))

        await wait_for(
            exit_kept,
            what="edged's status patch of the exited pod to be kept offline",
            timeout=30, guard=stack._guard,
        )

        # The cluster changes while the edge is away.
        await kube.replace(kubeclient.CONFIGMAPS, "cm-upd",
                           configmap(ns, "cm-upd", {"value": "v2"}), namespace=ns)
        await kube.delete(kubeclient.CONFIGMAPS, "cm-del", namespace=ns)
        await create(stack, kubeclient.CONFIGMAPS, configmap(ns, "cm-new", {"value": "fresh"}))
        await create(stack, kubeclient.PODS, _volume_pod(ns, "late", node, "cm-new"))
        await kube.delete(kubeclient.PODS, "doomed", namespace=ns)
        await kube.patch(kubeclient.PODS, "relabel", {"metadata": {"labels": {"gen": "2"}}},
                         namespace=ns)
        # Force-deleted and created again under the same name: a new pod (new uid).
        await kube.delete(kubeclient.PODS, "phoenix", namespace=ns,
                          body={"gracePeriodSeconds": 0})
        await stack.wait_pod_gone(ns, "phoenix", timeout=10)
        await create(stack, kubeclient.PODS, _volume_pod(ns, "phoenix", node, "cm-new"))

        # Longer than cloudcore's keepalive timeout, whatever the checks above took.
        async def outlasted() -> bool:
            return loop.time() - cut_at > CLOUD_KEEPALIVE + 1

        await wait_for(outlasted, what="the cut to outlast cloudcore's keepalive", timeout=30)
        assert proxy.accepted == accepted, "the edge got through a cut link"

        # --- the restore ---------------------------------------------------------------
        await proxy.restore()
        await stack.wait_node_ready(timeout=60)
        assert proxy.accepted > accepted

        # The exit made during the cut reaches the API server.
        p = await stack.wait_pod(ns, "exits", _terminated,
                                 what="to report its container's exit", timeout=60)
        assert p["status"].get("phase") in ("Failed", "Succeeded")

        # The pod created during the cut runs, with the configmap created during the cut.
        late = await stack.wait_pod(ns, "late", is_running_and_ready,
                                    what="to be Running and Ready", timeout=60)
        late_id = container_id(late, "app")
        assert late_id
        log_text = await wait_for(
            lambda: _log_with(cri, late_id, "late sees fresh"),
            what="the late pod to print the new configmap", timeout=30,
        )
        assert "late sees fresh" in log_text

        # The pod recreated under the same name runs as the new pod, and only it.
        reborn = await stack.wait_pod(ns, "phoenix", is_running_and_ready,
                                      what="(recreated) to be Running and Ready", timeout=60)
        old_uid, new_uid = running["phoenix"]["metadata"]["uid"], reborn["metadata"]["uid"]
        assert new_uid != old_uid

        async def old_phoenix_gone() -> bool:
            return not await cri.list_pod_sandbox(labels={POD_UID_LABEL: old_uid})

        await wait_for(old_phoenix_gone, what="the replaced pod's sandbox to be removed",
                       timeout=60, guard=stack._guard)
        reborn_id = container_id(reborn, "app")
        assert reborn_id
        await wait_for(lambda: _log_with(cri, reborn_id, "phoenix sees fresh"),
                       what="the recreated pod to use its new configmap", timeout=30)

        # The pod deleted during the cut is gone, from the API and from containerd.
        await stack.wait_pod_gone(ns, "doomed", timeout=60)
        doomed_uid = running["doomed"]["metadata"]["uid"]

        async def doomed_sandboxes_gone() -> bool:
            return not await cri.list_pod_sandbox(labels={POD_UID_LABEL: doomed_uid})

        await wait_for(doomed_sandboxes_gone, what="the deleted pod's sandbox to be removed",
                       timeout=60, guard=stack._guard)

        # The edge store matches the cluster: latest versions, nothing deleted kept.
        async def store_matches() -> bool | None:
            cms = stored(stack, ns, "configmap")
            pods = stored(stack, ns, "pod")
            api_cms = {c["metadata"]["name"]: c for c in
                       (await kube.list(kubeclient.CONFIGMAPS, namespace=ns))["items"]}
            api_pods = {q["metadata"]["name"]: q for q in
                        (await kube.list(kubeclient.PODS, namespace=ns))["items"]}
            want_cms = {k for k in api_cms if k in ("cm-upd", "cm-new")}
            ok = (
                set(cms) == want_cms
                and all(rv(cms[k]) == rv(api_cms[k]) for k in cms)
                and set(pods) == set(api_pods)
                and all(rv(pods[k]) >= rv(api_pods[k]) for k in pods)
            )
            return ok or None

        await wait_for(store_matches, what="the edge store to match the cluster",
                       timeout=30, guard=stack._guard)
        cms = stored(stack, ns, "configmap")
        assert cms["cm-upd"]["data"] == {"value": "v2"}
        assert cms["cm-new"]["data"] == {"value": "fresh"}
        pods = stored(stack, ns, "pod")
        assert pods["relabel"]["metadata"]["labels"].get("gen") == "2"
        assert pods["phoenix"]["metadata"]["uid"] == new_uid
        # Status patches kept offline were all delivered.
        assert not any(k.startswith(f"{ns}/") for k in pending_keys(stack))
        # The exited container is still the one we stopped: it was not restarted.
        status = await cri.container_status(exits_id)
        assert status.state == pb.ContainerState.CONTAINER_EXITED

    # Nothing was restarted to heal.
    assert stack.edgecore is not None and stack.cloudcore is not None
    assert (stack.edgecore.pid, stack.cloudcore.pid) == pids
    assert stack.edgecore.returncode is None and stack.cloudcore.returncode is None


async def _log_with(cri: CRIClient, cid: str, text: str) -> str | None:
    out = await read_container_log(cri, cid)
    return out if text in out else None


async def test_silent_blip_heals_without_restarts(blip: BlipStack) -> None:
    # Packets dropped, nobody told: cloudcore ends the session on its keepalive
    # timeout while the edge still holds its connection; when the link returns
    # the stale connection fails and the edge reconnects by itself.
    stack, proxy = blip.stack, blip.proxy
    assert proxy is not None and stack.edgecore is not None and stack.cloudcore is not None
    pids = (stack.edgecore.pid, stack.cloudcore.pid)
    kube, node = stack.client(), stack.node_name
    ns = await make_namespace(stack, "silent")
    await create(stack, kubeclient.CONFIGMAPS, configmap(ns, "cm", {"value": "before"}))
    await create(stack, kubeclient.PODS, _volume_pod(ns, "quiet", node, "cm"))
    await stack.wait_pod(ns, "quiet", is_running_and_ready, what="to be Running and Ready",
                         timeout=60)
    await stack.wait_node_ready(timeout=30)
    accepted = proxy.accepted

    loop = asyncio.get_running_loop()
    proxy.pause()
    paused_at = loop.time()
    try:
        cond = await wait_for(lambda: node_not_ready(stack), what="the node to leave Ready",
                              timeout=30, guard=stack._guard)
        assert cond["status"] == "Unknown"

        async def outlasted() -> bool:
            return loop.time() - paused_at > CLOUD_KEEPALIVE + 1

        await wait_for(outlasted, what="the pause to outlast cloudcore's keepalive", timeout=30)
        await kube.replace(kubeclient.CONFIGMAPS, "cm", configmap(ns, "cm", {"value": "after"}),
                           namespace=ns)
        want = rv(await kube.get(kubeclient.CONFIGMAPS, "cm", namespace=ns))
    finally:
        proxy.resume()

    await stack.wait_node_ready(timeout=60)
    assert proxy.accepted > accepted, "the edge did not reconnect"

    async def arrived() -> bool:
        cm = stored(stack, ns, "configmap").get("cm")
        return cm is not None and rv(cm) == want and cm["data"] == {"value": "after"}

    await wait_for(arrived, what="the update made during the silent cut to reach the edge",
                   timeout=30, guard=stack._guard)
    assert stack.edgecore is not None and stack.cloudcore is not None
    assert (stack.edgecore.pid, stack.cloudcore.pid) == pids
