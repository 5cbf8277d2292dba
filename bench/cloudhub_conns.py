"""Benchmark ``cloudhub_conns``: memory of one cloudhub holding N connected edge nodes.

Target (design.md section 5): one process holds 5,000 connected edge nodes
(WebSocket, mutual TLS, 15 s keepalives) with at most 40 KB of RSS per node.

The server is ``bench.hubserver``: the real CloudHub module and SessionManager
in a process of their own, so its RSS is cloudhub's alone. The nodes are
``bench.edgeclients`` processes, each node with its own certificate from the
same CA (node authentication on), sending a keepalive every 15 s. The fleet
connects in two halves so the figure can be given two ways:

* per node, 0 -> N: (RSS at N nodes - RSS at 0 nodes) / N, the target's measure;
* marginal, N/2 -> N: the slope over the second half, without one-time costs
  (lazy imports, allocator arenas, metric families) paid by the first nodes.

RSS is read from /proc after a ``gc.collect()`` in the server, at 0 nodes,
after the first half, and after the whole fleet has been held for one full
keepalive period (so every connection has carried traffic).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, raise_nofile
from bench.harness import Child, edge_fleet, hub_server, write_ca

__all__ = ["NAME", "OPTIONS", "run"]

NAME = "cloudhub_conns"
OPTIONS = frozenset({"nodes", "client_procs", "trace"})
TARGET_NODES = 5000
TARGET_KB_PER_NODE = 40.0
HEARTBEAT = 15.0


async def _wait_connected(hub: Child, want: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        status = await hub.ask({"cmd": "status"})
        if status["connected"] >= want or time.monotonic() > deadline:
            return int(status["connected"])
        await asyncio.sleep(0.5)


async def _connect_half(
    workdir: Path, hub: Child, port: int, nodes: int, procs: int, prefix: str, stack: Any
) -> tuple[list[Child], dict[str, Any]]:
    fleet_cm = edge_fleet(
        workdir, port=port, nodes=nodes, procs=procs, heartbeat=HEARTBEAT, prefix=prefix
    )
    fleet = await stack.enter_async_context(fleet_cm)
    start = time.monotonic()
    lines = await asyncio.gather(*(c.read(timeout=900) for c in fleet))
    info = {
        "connected": sum(x["connected"] for x in lines),
        "failed": sum(x["failed"] for x in lines),
        "first_failures": [f for x in lines for f in x["first_failures"]][:3],
        "certs_s": max(x["certs_s"] for x in lines),
        "connect_s": max(x["connect_s"] for x in lines),
        "wall_s": time.monotonic() - start,
    }
    return fleet, info


async def run(
    *,
    quick: bool = False,
    nodes: int | None = None,
    client_procs: int | None = None,
    trace: bool = False,
) -> list[Result]:
    import contextlib

    total = nodes or (200 if quick else TARGET_NODES)
    procs = client_procs or 2
    hold = 3.0 if quick else HEARTBEAT + 2
    raise_nofile(total + 2048)
    half = total // 2
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-conns-") as tmp:
        workdir = Path(tmp)
        write_ca(workdir)
        async with (
            hub_server(workdir, keepalive=30, trace=trace) as (hub, ready),
            contextlib.AsyncExitStack() as stack,
        ):
            port = int(ready["port"])
            rss0 = (await hub.ask({"cmd": "gc"}))["rss_kb"]
            _, first = await _connect_half(workdir, hub, port, half, procs, "bench-a-", stack)
            got = await _wait_connected(hub, first["connected"], 60)
            rss_half = (await hub.ask({"cmd": "gc"}))["rss_kb"]
            fleet_b, second = await _connect_half(
                workdir, hub, port, total - half, procs, "bench-b-", stack
            )
            want = first["connected"] + second["connected"]
            got = await _wait_connected(hub, want, 60)
            # Hold one keepalive period: every node sends at least one keepalive.
            held_start = time.monotonic()
            min_connected = got
            while time.monotonic() - held_start < hold:
                await asyncio.sleep(1.0)
                min_connected = min(min_connected, (await hub.ask({"cmd": "status"}))["connected"])
            final = await hub.ask({"cmd": "gc"})
            rss_n = final["rss_kb"]
            connected = int(final["connected"])
            reports = []
            for child in fleet_b:
                reports.append(await child.ask({"cmd": "report"}, timeout=60))
            traced: dict[str, Any] | None = None
            if trace:
                traced = await hub.ask({"cmd": "trace", "nodes": connected}, timeout=300)
        log_tail = (workdir / "hubserver.log").read_text(errors="replace").splitlines()[-3:]
    failed = first["failed"] + second["failed"]
    per_node = (rss_n - rss0) / max(connected, 1)
    marginal = (rss_n - rss_half) / max(connected - first["connected"], 1)
    figures: dict[str, Any] = {
        "nodes requested": total,
        "nodes connected (server)": connected,
        "lowest connected count while held": min_connected,
        "connect failures": failed,
        "server RSS at 0 nodes (MiB)": rss0 / 1024,
        f"server RSS at {first['connected']} nodes (MiB)": rss_half / 1024,
        f"server RSS at {connected} nodes (MiB)": rss_n / 1024,
        "KiB per node (0 -> N)": per_node,
        "KiB per node (marginal, N/2 -> N)": marginal,
        "cert issue time per client proc (s)": second["certs_s"],
        f"connect time, second half of {total - half} nodes (s)": second["connect_s"],
        "keepalives sent by second half": sum(r["keepalives"] for r in reports),
        "connections closed by server during hold (second half)": sum(r["closed"] for r in reports),
        "held for (s)": hold,
        "client processes per half": procs,
    }
    if failed:
        examples = (first["first_failures"] + second["first_failures"])[:2]
        notes.append(f"connect failures, e.g. {examples}")
    if traced is not None:
        figures["tracemalloc total (MiB)"] = traced["traced_kb"] / 1024
        for row in traced["top"][:25]:
            notes.append(
                f"tracemalloc {row['where']}: {row['kb'] / 1024:.1f} MiB, "
                f"{row['per_node_bytes']:.0f} B/node, {row['count']} blocks"
            )
        notes.append("with --trace the RSS figures include tracemalloc's own overhead")
    if connected < total:
        notes.append(f"server log tail: {log_tail}")
    # /proc reports KiB; the target is in KB (1 KiB = 1.024 KB).
    met = connected >= total and min_connected >= total and per_node * 1.024 <= TARGET_KB_PER_NODE
    return [
        Result(
            name=NAME,
            target=f"{TARGET_NODES:,} nodes held, <= {TARGET_KB_PER_NODE:.0f} KB RSS per node"
            + ("" if total >= TARGET_NODES else f" (run with {total} nodes)"),
            met=met if total >= TARGET_NODES or not met else None,
            figures=figures,
            notes=notes,
        )
    ]
