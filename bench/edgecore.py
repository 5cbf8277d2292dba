"""Benchmark ``edgecore``: edgecore memory with 10 pods, pod create -> Running.

Targets (design.md section 5): edgecore RSS at idle with 10 pods below 60 MB;
pod create -> Running p50 below 0.5 s on containerd.

Set-up: the whole development stack of ``keadm.devstack`` (docs/demo.md):
devkube, a private containerd with the local busybox/pause images, our
cloudcore and our edgecore as real processes, all on loopback. Needs root and
the Debian packages of ``scripts/setup``; without them the benchmark says so
and measures nothing.

Pod create -> Running: for each of the 10 pods in turn (busybox, idle, pinned
with ``nodeName``), from just before the API ``create`` call to the moment our
watch on the namespace sees ``status.phase == Running`` in the API server.
That covers the whole path: devkube's watch, cloudcore's informer and
edgecontroller, cloudhub, edgehub, metamanager (store + ack), edged (CRI
RunPodSandbox, CreateContainer, StartContainer on containerd), the status
patch back up through cloudhub and edgecontroller to the API server, and the
watch event to us. Pods are created one after the other (each waits for the
previous to run), as on a quiet node.

RSS is read from /proc for the edgecore process (and cloudcore's, for the
reference point "cloudcore with one node"), at idle with no pods and at idle
with the 10 pods running, after a settle period, as the maximum of 5 samples
one second apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, rss_kb
from bench.delivery import percentile

__all__ = ["NAME", "OPTIONS", "run"]

NAME = "edgecore"
OPTIONS = frozenset({"pods"})
TARGET_RSS_MB = 60.0
TARGET_P50_S = 0.5
IDLE = 'trap "exit 0" TERM; while true; do sleep 1; done'


def _pod(ns: str, name: str, node: str) -> dict[str, Any]:
    from keadm.devstack.workload import BUSYBOX_IMAGE

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "idle",
                    "image": BUSYBOX_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", IDLE],
                }
            ],
        },
    }


async def _rss_mb(pid: int, samples: int = 5) -> float:
    values = []
    for _ in range(samples):
        values.append(rss_kb(pid) / 1024)
        await asyncio.sleep(1.0)
    return max(values)


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


async def _watch_running(kube: Any, ns: str, seen: dict[str, float], stop: asyncio.Event) -> None:
    import kubeclient

    while not stop.is_set():
        with contextlib.suppress(kubeclient.KubeClientError):
            async for event in kube.watch(kubeclient.PODS, namespace=ns, stopper=stop):
                obj = event.object
                name = obj.get("metadata", {}).get("name", "")
                phase = (obj.get("status") or {}).get("phase")
                if phase == "Running" and name not in seen:
                    seen[name] = time.monotonic()


async def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.01)


async def run(*, quick: bool = False, pods: int | None = None) -> list[Result]:
    from keadm.devstack import DevStack, StackError, StackSettings
    from keadm.devstack.requirements import missing_requirements

    count = pods or (3 if quick else 10)
    settle = 3.0 if quick else 10.0
    target = f"RSS idle with 10 pods < {TARGET_RSS_MB:.0f} MB; create -> Running p50 < 0.5 s"
    import os

    missing = missing_requirements()
    if missing or os.geteuid() != 0:
        why = f"missing {missing}" if missing else "not root"
        return [Result(NAME, target, None, notes=[f"cannot run the stack here: {why}"])]
    import kubeclient

    figures: dict[str, Any] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-edgecore-") as tmp:
        stack = DevStack(StackSettings(work_dir=Path(tmp), step_timeout=120.0))
        try:
            started = time.monotonic()
            await stack.start()
            figures["stack start (s)"] = time.monotonic() - started
            assert stack.edgecore is not None and stack.cloudcore is not None
            edge_pid, cloud_pid = stack.edgecore.pid, stack.cloudcore.pid
            assert edge_pid is not None and cloud_pid is not None
            await asyncio.sleep(settle)  # let start-up work (node status, lease) finish
            figures["edgecore RSS idle, 0 pods (MiB)"] = await _rss_mb(edge_pid)
            figures["cloudcore RSS, 1 node (MiB)"] = await _rss_mb(cloud_pid, 1)
            kube = stack.client()
            ns = f"bench-{int(time.time())}"
            await kube.create(kubeclient.NAMESPACES, {"metadata": {"name": ns}})
            seen: dict[str, float] = {}
            stop = asyncio.Event()
            watcher = asyncio.create_task(_watch_running(kube, ns, seen, stop))
            latencies: list[float] = []
            try:
                for i in range(count):
                    name = f"bench-{i}"
                    t0 = time.monotonic()
                    await kube.create(
                        kubeclient.PODS, _pod(ns, name, stack.node_name), namespace=ns
                    )
                    await _wait(lambda n=name: n in seen, 120, f"pod {name} Running")
                    latencies.append(seen[name] - t0)
                await asyncio.sleep(settle)
                figures[f"edgecore RSS idle, {count} pods (MiB)"] = await _rss_mb(edge_pid)
                figures["  of which anonymous (heap, stacks) (MiB)"] = (
                    rss_kb(edge_pid, "RssAnon") / 1024
                )
                figures["  of which mapped files (shared libraries) (MiB)"] = (
                    rss_kb(edge_pid, "RssFile") / 1024
                )
                figures["edgecore threads"] = _threads(edge_pid)
                figures[f"cloudcore RSS, 1 node, {count} pods (MiB)"] = await _rss_mb(cloud_pid, 1)
            finally:
                stop.set()
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
                with contextlib.suppress(Exception):
                    for i in range(count):
                        await kube.delete(kubeclient.PODS, f"bench-{i}", namespace=ns)
                    for i in range(count):
                        await stack.wait_pod_gone(ns, f"bench-{i}")
                    await kube.delete(kubeclient.NAMESPACES, ns)
            figures["pods"] = count
            figures["create -> Running p50 (s)"] = percentile(latencies, 50)
            figures["create -> Running max (s)"] = max(latencies)
            figures["create -> Running, each (s)"] = ", ".join(f"{x:.2f}" for x in latencies)
        except (StackError, TimeoutError) as exc:
            notes.append(f"stack failed: {exc}")
            return [Result(NAME, target, None, figures, notes)]
        finally:
            await stack.stop()
    rss = figures[f"edgecore RSS idle, {count} pods (MiB)"]
    p50 = figures["create -> Running p50 (s)"]
    met = rss * 1.048576 < TARGET_RSS_MB and p50 < TARGET_P50_S  # MiB -> MB
    notes.append("RSS in MiB (/proc VmRSS; 60 MB = 57.2 MiB); Running as seen by a watch")
    return [Result(NAME, target, met if count >= 10 or not met else None, figures, notes)]
