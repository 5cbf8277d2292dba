"""A short soak: cloudcore's and edgecore's memory levels off.

design.md section 6: "cloudcore and edgecore memory growing without bound". A
node with a few pods runs for about 45 s with 2 s keepalives and node status
updates while a configmap mounted by the pods is updated continuously, each
update waited for in the edge store (so both directions carry traffic: the
update down, the acks, node status and pod status up). The resident set size
of both processes after the run must stay within a generous bound of what it
was after a warm-up (measured: both flat within about 1 MiB over ~700
updates). This is a sanity check, not a benchmark (bench/ measures): it
catches a leak of tens of KiB per update, such as keeping every message or
object, not a slow drip of a few bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import kubeclient
from e2e.helpers import IDLE, busybox, configmap, create, pod
from e2e.resilience import BlipStack, make_namespace, rv, start_blip_stack, stop_blip_stack, stored
from keadm.devstack import wait_for
from keadm.devstack.workload import is_running_and_ready

pytestmark = [pytest.mark.e2e, pytest.mark.containerd, pytest.mark.asyncio(loop_scope="module")]

PODS = 3
WARMUP = 10.0
SOAK = 35.0
#: allowed growth after warm-up: the larger of 25 % and 24 MiB
GROWTH_RATIO = 1.25
GROWTH_FLOOR = 24 * 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def soak(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BlipStack]:
    bs = await start_blip_stack(tmp_path_factory.mktemp("soak"), proxy=False)
    try:
        yield bs
    finally:
        await stop_blip_stack(bs)


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def test_memory_levels_off(soak: BlipStack) -> None:
    stack = soak.stack
    assert stack.edgecore is not None and stack.cloudcore is not None
    pids = {"edgecore": stack.edgecore.pid, "cloudcore": stack.cloudcore.pid}
    kube, node = stack.client(), stack.node_name
    ns = await make_namespace(stack, "soak")
    await create(stack, kubeclient.CONFIGMAPS, configmap(ns, "churn", {"n": "0"}))
    for i in range(PODS):
        c = busybox("app", IDLE, volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}])
        await create(stack, kubeclient.PODS, pod(
            ns, f"soak-{i}", node, [c], volumes=[{"name": "cfg", "configMap": {"name": "churn"}}]))
    for i in range(PODS):
        await stack.wait_pod(ns, f"soak-{i}", is_running_and_ready,
                             what="to be Running and Ready", timeout=60)

    loop = asyncio.get_running_loop()
    updates = 0

    async def churn_until(deadline: float) -> None:
        nonlocal updates
        while loop.time() < deadline:
            updates += 1
            obj = await kube.replace(kubeclient.CONFIGMAPS, "churn",
                                     configmap(ns, "churn", {"n": str(updates)}), namespace=ns)
            want = rv(obj)

            async def arrived(want: int = want) -> bool:
                cm = stored(stack, ns, "configmap").get("churn")
                return cm is not None and rv(cm) >= want

            await wait_for(arrived, what=f"update {updates} in the edge store", timeout=30,
                           interval=0.05, guard=stack._guard)

    await churn_until(loop.time() + WARMUP)
    warm = {name: rss(pid) for name, pid in pids.items()}
    warm_updates = updates
    await churn_until(loop.time() + SOAK)
    end = {name: rss(pid) for name, pid in pids.items()}

    assert updates - warm_updates > 50, "too little traffic to tell anything"
    for name in pids:
        bound = max(warm[name] * GROWTH_RATIO, warm[name] + GROWTH_FLOOR)
        assert end[name] <= bound, (
            f"{name} RSS grew from {warm[name] >> 20} MiB to {end[name] >> 20} MiB "
            f"over {updates - warm_updates} updates"
        )
    # Still healthy at the end: the node reports and the pods run.
    await stack.wait_node_ready(timeout=30)
