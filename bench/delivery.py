"""Benchmark ``delivery``: pods through cloudhub's session manager to acking edges.

Target (design.md section 5): 10,000 pods spread over 1,000 nodes are
delivered and acked with p99 below 1 s.

Set-up: ``bench.hubserver`` (the real CloudHub module, WebSocket with mutual
TLS, the production SessionManager and delivery core) and 1,000 simulated
edges (``bench.edgeclients``: own certificates, 15 s keepalives, an ``OK``
response for every object, as metamanager acks). The pods are the Pod of the
real capture's ``insert`` frame (3 KB on the wire), renamed per node, 10 per
node, interleaved across nodes as an informer's stream would be.

What the latency covers, precisely (all times are CLOCK_MONOTONIC, which is
system-wide on Linux, so the processes' clocks agree):

* start: in the cloudcore process, just before ``ctx.send("cloudhub", msg)``,
  the call edgecontroller makes for an informer event (so the wait for room in
  cloudhub's bounded mailbox is included);
* ``enter -> edge``: until the edge process has read and decoded the frame;
* ``enter -> ack``: until cloudhub's session has matched the edge's
  ``response`` to the in-flight message (the ``MessageAcked`` event, where the
  ObjectSync record would be written).

Not covered: the API server watch, the informer and the edgecontroller handler
before ``ctx.send`` (no API server here), and the ObjectSync write after each
ack, which in production is an API call awaited by the node's session before
its next message (it serialises with the per-node one-in-flight rule).

Two runs: a burst (all pods handed over at once, the target's case) and a
paced run (pods handed over at a steady rate, ``PACED_RATE`` per second).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, raise_nofile
from bench.harness import Child, edge_fleet, hub_server, write_ca

__all__ = ["NAME", "OPTIONS", "percentile", "run"]

NAME = "delivery"
OPTIONS = frozenset({"nodes", "pods", "client_procs"})
TARGET_P99_S = 1.0
PACED_RATE = 1000.0  # pods/s
PREFIX = "bench-d-"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _summary(label: str, values: list[float]) -> dict[str, float]:
    if not values:
        return {f"{label} (no samples)": 0.0}
    return {
        f"{label} p50 (ms)": percentile(values, 50) * 1000,
        f"{label} p99 (ms)": percentile(values, 99) * 1000,
        f"{label} max (ms)": max(values) * 1000,
    }


async def _wait_connected(hub: Child, want: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        got = int((await hub.ask({"cmd": "status"}))["connected"])
        if got >= want or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.5)


async def _one_run(
    hub: Child, fleet: list[Child], nodes: list[str], per_node: int, rate: float, round_: int
) -> tuple[dict[str, Any], float | None]:
    answer = await hub.ask(
        {
            "cmd": "deliver",
            "nodes": nodes,
            "per_node": per_node,
            "rate": rate,
            "round": round_,
            "timeout": 120,
        },
        timeout=300,
    )
    received: dict[str, float] = {}
    edge_cpu = 0.0
    for child in fleet:
        report = await child.ask({"cmd": "report"}, timeout=60)
        received.update(report["received"])
        edge_cpu += report["cpu_s"]
    sent: dict[str, float] = answer["sent"]
    acked: dict[str, float] = answer["acked"]
    to_ack = [acked[m] - t for m, t in sent.items() if m in acked]
    to_edge = [received[m] - t for m, t in sent.items() if m in received]
    edge_to_ack = [acked[m] - received[m] for m in acked if m in received]
    span = (max(acked.values()) - min(sent.values())) if acked else 0.0
    figures: dict[str, Any] = {
        "pods handed to cloudhub": len(sent),
        "acked": len(acked),
        "handing over took (s)": answer["injected_s"],
        "first hand-over to last ack (s)": span,
        "throughput (acked pods/s)": len(acked) / span if span else 0.0,
        "cloudhub CPU per pod (ms)": answer["cpu_s"] / max(len(sent), 1) * 1000,
        "cloudhub CPU busy (% of one core, hand-over to last ack)": (
            answer["cpu_s"] / span * 100 if span else 0.0
        ),
        "cloudhub waiting for a CPU while runnable (s)": answer["runqueue_wait_s"],
    }
    figures.update(_summary("enter -> ack", to_ack))
    figures.update(_summary("enter -> edge", to_edge))
    figures.update(_summary("edge -> ack", edge_to_ack))
    p99 = percentile(to_ack, 99) if len(to_ack) == len(sent) and to_ack else None
    figures["edge processes CPU, cumulative (s)"] = edge_cpu
    return figures, p99


async def run(
    *,
    quick: bool = False,
    nodes: int | None = None,
    pods: int | None = None,
    client_procs: int | None = None,
) -> list[Result]:
    n = nodes or (100 if quick else 1000)
    total = pods or (1000 if quick else 10_000)
    per_node = max(1, total // n)
    procs = client_procs or 2
    rate = PACED_RATE / (10 if quick else 1)
    raise_nofile(n + 2048)
    results: list[Result] = []
    notes_extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        workdir = Path(tmp)
        write_ca(workdir)
        # BENCH_PROFILE=<file>: cProfile the hub server (to find what dominates).
        prof = Path(os.environ["BENCH_PROFILE"]) if os.environ.get("BENCH_PROFILE") else None
        # BENCH_RECORD_DELAY=<s>: each ObjectSync lookup / ack record takes this long, as an
        # API round trip would (the recorder is otherwise instantaneous here).
        record_delay = float(os.environ.get("BENCH_RECORD_DELAY", "0"))
        if record_delay:
            notes_extra.append(
                f"ObjectSync lookup and ack record simulated at {record_delay}s each"
            )
        async with (
            hub_server(workdir, keepalive=30, profile=prof, record_delay=record_delay) as (
                hub,
                ready,
            ),
            contextlib.AsyncExitStack() as st,
        ):
            fleet = await st.enter_async_context(
                edge_fleet(workdir, port=int(ready["port"]), nodes=n, procs=procs, prefix=PREFIX)
            )
            lines = await asyncio.gather(*(c.read(timeout=900) for c in fleet))
            connected = await _wait_connected(hub, sum(x["connected"] for x in lines), 60)
            names = [f"{PREFIX}{i}" for i in range(n)]
            for round_, (label, pace) in enumerate((("burst", 0.0), ("paced", rate))):
                figures, p99 = await _one_run(hub, fleet, names, per_node, pace, round_)
                figures = {"nodes connected": connected, **figures}
                met = p99 is not None and p99 < TARGET_P99_S
                notes = [
                    "latency: cloudcore's ctx.send('cloudhub') to the session matching the "
                    "edge's ack; API watch/informer/edgecontroller and ObjectSync writes excluded"
                ]
                if label == "paced":
                    notes.append(f"pods handed over at {pace:.0f}/s")
                else:
                    notes.append("all pods handed over at once (informer re-list / burst)")
                if p99 is None:
                    notes.append("not every pod was acked within 120 s")
                notes.extend(notes_extra)
                results.append(
                    Result(
                        name=f"{NAME} ({label})",
                        target=f"{total:,} pods over {n:,} nodes acked, p99 < {TARGET_P99_S:.0f} s"
                        + ("" if (n, total) == (1000, 10_000) else " (scaled down)"),
                        met=met if (n, total) == (1000, 10_000) or not met else None,
                        figures=figures,
                        notes=notes,
                    )
                )
    return results
