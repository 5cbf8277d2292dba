"""No update lost or applied out of order across restarts and disconnects.

design.md section 6: "messages lost without retransmission". One configmap is
mounted in a running pod and updated in bursts, through four phases: connected,
a cloudcore restart, an edge disconnect (the blip proxy cut), an edgecore
restart. After each phase the file in the container holds the latest value and
metamanager's store holds the API server's latest resourceVersion. All along, a
sampler reads the store and fails the test if it ever holds an older
resourceVersion after a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

import kubeclient
from e2e.helpers import IDLE, busybox, configmap, create, pod
from e2e.resilience import BlipStack, make_namespace, rv, start_blip_stack, stop_blip_stack, stored
from edgecore.edged.cri import CRIClient
from edgecore.edged.errors import CRIError
from keadm.devstack import DevStack, wait_for
from keadm.devstack.workload import container_id, is_running_and_ready

pytestmark = [pytest.mark.e2e, pytest.mark.containerd, pytest.mark.asyncio(loop_scope="module")]

BURST = 5


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def order(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BlipStack]:
    bs = await start_blip_stack(tmp_path_factory.mktemp("order"), proxy=True)
    try:
        yield bs
    finally:
        await stop_blip_stack(bs)


class StoreSampler:
    """Reads the configmap's resourceVersion from the edge store every 50 ms and
    records any step backwards."""

    def __init__(self, stack: DevStack, ns: str, name: str) -> None:
        self.stack, self.ns, self.name = stack, ns, name
        self.highest = 0
        self.samples = 0
        self.regressions: list[tuple[int, int]] = []
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        try:
            obj = stored(self.stack, self.ns, "configmap").get(self.name)
        except sqlite3.Error:
            return  # the file is being created or locked: no sample this time
        if obj is None:
            return
        now = rv(obj)
        self.samples += 1
        if now < self.highest:
            self.regressions.append((self.highest, now))
        self.highest = max(self.highest, now)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.05)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def test_updates_arrive_in_order_across_restarts_and_disconnects(order: BlipStack) -> None:
    stack, proxy = order.stack, order.proxy
    assert proxy is not None
    kube, node = stack.client(), stack.node_name
    ns = await make_namespace(stack, "order")
    await create(stack, kubeclient.CONFIGMAPS, configmap(ns, "seq", {"value": "start"}))
    c = busybox("app", IDLE, volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}])
    await create(stack, kubeclient.PODS, pod(
        ns, "reader", node, [c], volumes=[{"name": "cfg", "configMap": {"name": "seq"}}]))
    await stack.wait_pod(ns, "reader", is_running_and_ready, what="to be Running and Ready",
                         timeout=60)
    sampler = StoreSampler(stack, ns, "seq")
    sampler.start()
    latest = {"value": "start"}

    async def burst(phase: str) -> None:
        for i in range(BURST):
            latest["value"] = f"{phase}-{i}"
            await kube.replace(kubeclient.CONFIGMAPS, "seq",
                               configmap(ns, "seq", dict(latest)), namespace=ns)

    async def converged(phase: str) -> None:
        want = latest["value"]
        api_rv = rv(await kube.get(kubeclient.CONFIGMAPS, "seq", namespace=ns))
        seen: dict[str, str] = {}

        async def file_is_latest() -> bool:
            p = await kube.get(kubeclient.PODS, "reader", namespace=ns)
            cid = container_id(p, "app")
            if not cid:
                return False
            try:
                async with CRIClient(stack.runtime_endpoint) as cri:
                    code, out = await cri.exec_sync(cid, ["cat", "/etc/cfg/value"], 5)
            except CRIError as exc:
                seen["file"] = f"exec failed: {exc}"
                return False
            seen["file"] = out.decode(errors="replace")
            return code == 0 and seen["file"] == want

        await wait_for(file_is_latest, what=f"{phase}: the file to read {want!r}", timeout=60,
                       describe=lambda: f"file reads {seen.get('file')!r}", guard=stack._guard)
        sampler.sample()
        obj = stored(stack, ns, "configmap")["seq"]
        assert obj["data"] == {"value": want}, phase
        assert rv(obj) == api_rv, phase
        assert sampler.regressions == [], f"{phase}: store went back {sampler.regressions}"

    await step(sampler, "connected", lambda: burst("connected"), converged)

    async def cloudcore_restart() -> None:
        await stack.stop_cloudcore()
        await burst("cloud-down")
        await stack.start_cloudcore()
        await burst("cloud-back")

    await step(sampler, "cloudcore restart", cloudcore_restart, converged)

    async def disconnect() -> None:
        await proxy.cut()
        await burst("cut")
        await proxy.restore()
        await burst("restored")

    await step(sampler, "edge disconnect", disconnect, converged)

    async def edgecore_restart() -> None:
        await burst("edge-going")
        await stack.stop_edgecore()
        await burst("edge-down")
        await stack.start_edgecore(wait_ready=False)
        await burst("edge-back")

    await step(sampler, "edgecore restart", edgecore_restart, converged)
    await sampler.stop()
    assert sampler.samples > 0


async def step(
    sampler: StoreSampler, phase: str, action: Callable[[], Awaitable[None]],
    converged: Callable[[str], Awaitable[None]],
) -> None:
    await action()
    await converged(phase)
