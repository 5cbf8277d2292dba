"""The cloudhub under test, as its own process: ``python -m bench.hubserver``.

It runs what ``cloudcore --config`` runs for cloudhub: the ``CloudHub`` beehive
module (certificates from PEM files, the WebSocket server with mutual TLS and
node authentication, the production ``SessionManager`` with KubeEdge's
delivery settings) under the beehive ``Runtime``. There is no API server:
cloudhub runs without one (CertStore takes the CA from files); the only thing
that changes is the ObjectSync recorder, replaced by :class:`AckClock`, which
records when each message was acknowledged instead of writing an ObjectSync.
The edgecontroller is replaced by the ``benchdriver`` module, which hands
pods to cloudhub exactly as the edgecontroller does
(``ctx.send("cloudhub", msg)`` with a ``node/<node>/...`` resource).

Control: one JSON command per line on stdin, one JSON answer per line on
stdout (``{"ready": ...}`` first). Commands: ``status``, ``gc``, ``deliver``,
``trace``, ``stop``. The process also stops by itself after
``--max-seconds`` and when stdin closes (its parent is gone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import gc
import json
import logging
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from beehive.constants import GROUP_RESOURCE, MOD_EDGECONTROLLER, OP_INSERT
from beehive.context import Context
from beehive.message import Message
from beehive.module import Registry
from beehive.runtime import Runtime
from bench import raise_nofile, rss_kb
from cloudcore.cloudhub.module import CloudHub, HubDeps
from cloudcore.cloudhub.sessions import SessionManager, SessionSettings
from kecommon.config import CloudCoreConfig

log = logging.getLogger("bench.hubserver")

DRIVER = "benchdriver"


class AckClock:
    """A SyncRecorder that timestamps acks (monotonic, comparable across processes)."""

    def __init__(self, delay: float = 0.0) -> None:
        # delay: seconds each call takes, to stand in for the ObjectSync API round trips.
        self.delay = delay
        self.sent_at: dict[str, float] = {}
        self.acked_at: dict[str, float] = {}
        self.all_acked = asyncio.Event()

    async def recorded_version(self, node: str, msg: Message) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        return None  # nothing recorded: every object is new to the node

    async def record_ack(self, node: str, msg: Message) -> None:
        now = time.monotonic()
        if self.delay:
            await asyncio.sleep(self.delay)
        if msg.msg_id in self.sent_at and msg.msg_id not in self.acked_at:
            self.acked_at[msg.msg_id] = now
            if len(self.acked_at) == len(self.sent_at):
                self.all_acked.set()


def pod_template() -> dict[str, Any]:
    """The Pod of the real capture's ``insert default/pod/cap-pod`` frame."""
    from bench import REPO

    path = REPO / "tests" / "data" / "captures" / "kubeedge-1.23-ws-pods.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec and rec.get("dir") == "cloud->edge":
            route = rec["frame"]["route"]
            if route["operation"] == OP_INSERT and "/pod/" in route["resource"]:
                content: dict[str, Any] = rec["frame"]["content"]
                return content
    raise RuntimeError(f"no pod insert in {path}")


def make_pods(
    nodes: list[str], per_node: int, *, namespace: str = "bench", round_: int = 0
) -> list[Message]:
    """``per_node`` pod inserts per node, shaped like the capture's, as edgecontroller sends."""
    template = pod_template()
    out: list[Message] = []
    rv = 1000 + round_ * len(nodes) * per_node
    # Interleave nodes, as an informer's event stream would.
    for i in range(per_node):
        for node in nodes:
            rv += 1
            pod = copy.deepcopy(template)
            name = f"{node}-r{round_}-p{i}"
            meta = pod["metadata"]
            meta.update(
                name=name,
                namespace=namespace,
                uid=f"{node}-uid-{round_}-{i}",
                resourceVersion=str(rv),
            )
            pod["spec"]["nodeName"] = node
            out.append(
                Message.new(
                    source=MOD_EDGECONTROLLER,
                    group=GROUP_RESOURCE,
                    operation=OP_INSERT,
                    resource=f"node/{node}/{namespace}/pod/{name}",
                    content=pod,
                    resource_version=str(rv),
                )
            )
    return out


class Driver:
    """The benchmark's beehive module: obeys the control channel."""

    def __init__(self, hub: CloudHub, clock: AckClock, runtime_stop: Any, trace: bool) -> None:
        self.hub = hub
        self.clock = clock
        self._stop = runtime_stop
        self._trace = trace
        self._ctx: Context | None = None

    @property
    def name(self) -> str:
        return DRIVER

    @property
    def group(self) -> str:
        return DRIVER

    def enabled(self, config: Any) -> bool:
        return True

    async def cleanup(self) -> None:
        pass

    async def start(self, ctx: Context) -> None:
        self._ctx = ctx
        manager = await self._wait_hub()
        port = self.hub.websocket.port if self.hub.websocket else 0
        emit({"ready": True, "port": port, "pid": _pid(), "rss_kb": rss_kb()})
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                log.info("stdin closed: stopping")
                self._stop()
                return
            try:
                cmd = json.loads(line)
                answer = await self._command(manager, cmd)
            except Exception as exc:  # report, keep serving
                log.exception("command failed")
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            emit(answer)
            if cmd.get("cmd") == "stop":
                self._stop()
                return

    async def _wait_hub(self) -> SessionManager:
        # CloudHub has no "listening" event to wait on; poll briefly at start-up.
        while not (isinstance(self.hub.handler, SessionManager) and _listening(self.hub)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        manager: SessionManager = self.hub.handler
        await manager.wait_ready()
        return manager

    async def _command(self, manager: SessionManager, cmd: dict[str, Any]) -> dict[str, Any]:
        what = cmd.get("cmd")
        if what == "status":
            return {"connected": len(manager.connected_nodes), "rss_kb": rss_kb()}
        if what == "gc":
            gc.collect()
            return {"connected": len(manager.connected_nodes), "rss_kb": rss_kb()}
        if what == "trace":
            return self._trace_report(int(cmd.get("nodes", 1)))
        if what == "deliver":
            return await self._deliver(cmd)
        if what == "stop":
            return {"stopping": True}
        return {"error": f"unknown command {what!r}"}

    async def _deliver(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self._ctx is not None
        messages = make_pods(
            list(cmd["nodes"]), int(cmd["per_node"]), round_=int(cmd.get("round", 0))
        )
        rate = float(cmd.get("rate", 0))  # pods/s; 0 = all at once
        clock = self.clock
        clock.sent_at.clear()
        clock.acked_at.clear()
        clock.all_acked.clear()
        for msg in messages:
            clock.sent_at[msg.msg_id] = 0.0
        start = time.monotonic()
        cpu_start = time.process_time()
        wait_start = _runqueue_wait_s()
        for i, msg in enumerate(messages):
            if rate:
                due = start + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            clock.sent_at[msg.msg_id] = time.monotonic()
            await self._ctx.send("cloudhub", msg)
        injected = time.monotonic() - start
        timeout = float(cmd.get("timeout", 120))
        with contextlib.suppress(TimeoutError):  # the answer shows what was not acked
            await asyncio.wait_for(clock.all_acked.wait(), timeout)
        return {
            "cpu_s": time.process_time() - cpu_start,
            "runqueue_wait_s": _runqueue_wait_s() - wait_start,
            "injected_s": injected,
            "sent": dict(clock.sent_at),
            "acked": dict(clock.acked_at),
            "rss_kb": rss_kb(),
        }

    def _trace_report(self, nodes: int) -> dict[str, Any]:
        if not self._trace:
            return {"error": "start the server with --trace"}
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        by_line = snap.statistics("lineno")
        total = sum(s.size for s in by_line)
        top = [
            {
                "where": f"{s.traceback[0].filename.split('site-packages/')[-1]}:"
                f"{s.traceback[0].lineno}",
                "kb": s.size / 1024,
                "per_node_bytes": s.size / max(nodes, 1),
                "count": s.count,
            }
            for s in by_line[:25]
        ]
        return {"traced_kb": total / 1024, "top": top, "rss_kb": rss_kb()}


def _runqueue_wait_s() -> float:
    """Seconds this process spent runnable but waiting for a CPU (/proc/self/schedstat)."""
    try:
        with open("/proc/self/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _listening(hub: CloudHub) -> bool:
    try:
        return hub.websocket is not None and hub.websocket.port > 0
    except AssertionError:  # created, not yet listening
        return False


def _pid() -> int:
    import os

    return os.getpid()


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def build_config(args: argparse.Namespace) -> CloudCoreConfig:
    cfg = CloudCoreConfig()
    hub = cfg.modules.cloud_hub
    d = Path(args.dir)
    hub.tls_ca_file = str(d / "ca.crt")
    hub.tls_ca_key_file = str(d / "ca.key")
    hub.tls_cert_file = str(d / "server.crt")
    hub.tls_private_key_file = str(d / "server.key")
    hub.advertise_address = ["127.0.0.1"]
    hub.dns_names = ["localhost"]
    hub.websocket.address = "127.0.0.1"
    hub.websocket.port = args.port
    hub.https.enable = False
    hub.quic.enable = False
    hub.node_limit = args.node_limit
    hub.keepalive_interval = args.keepalive
    return cfg


async def amain(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    clock = AckClock(args.record_delay)

    def factory(deps: HubDeps) -> SessionManager:
        # As cloudhub's default factory, with the ack clock as the recorder.
        return SessionManager(
            SessionSettings.from_cloudhub_config(deps.config.modules.cloud_hub),
            recorder=clock,
        )

    hub = CloudHub(cfg, kube=None, handler_factory=factory)
    registry = Registry()
    registry.register(hub)
    runtime: Runtime
    registry.register(Driver(hub, clock, lambda: runtime.request_stop(), args.trace))
    runtime = Runtime(registry, cfg, shutdown_timeout=10)
    loop = asyncio.get_running_loop()
    loop.call_later(args.max_seconds, runtime.request_stop)
    return await runtime.run(handle_signals=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hubserver")
    parser.add_argument("--dir", required=True, help="holds ca.crt/ca.key; server cert written")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--node-limit", type=int, default=100_000)
    parser.add_argument("--keepalive", type=int, default=30, help="cloudHub.keepaliveInterval")
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--trace", action="store_true", help="tracemalloc (1 frame)")
    parser.add_argument(
        "--record-delay",
        type=float,
        default=0.0,
        help="seconds each ObjectSync lookup and ack record takes (an API round trip)",
    )
    parser.add_argument("--log", help="log file (INFO)")
    parser.add_argument("--profile", help="write cProfile stats of the whole run to this file")
    args = parser.parse_args()
    if args.trace:
        tracemalloc.start(1)
    logging.basicConfig(
        level=logging.INFO,
        filename=args.log,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    raise_nofile(args.node_limit + 1024)
    if not args.profile:
        return asyncio.run(amain(args))
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(asyncio.run, amain(args))
    finally:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    sys.exit(main())
