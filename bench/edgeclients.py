"""Simulated edge nodes, as their own process: ``python -m bench.edgeclients``.

Each simulated node does on the wire what a KubeEdge edgecore does (protocol.md
3.2-3.7): its own ECDSA key and certificate (CN ``system:node:<node>``, issued
here from the benchmark's CA, as cloudhub's ``/edge.crt`` would), wss to
cloudhub with the ``Node_id``/``Project_id``/``Connectionuse`` headers, an
upstream ``keepalive`` every ``--heartbeat`` seconds (first one at a random
phase so they spread out), and an ack (``response`` ``OK`` with
``parent_msg_id`` = the message, as metamanager sends it) for every
downstream message that is not itself a response. It notes the monotonic
time each message arrived (CLOCK_MONOTONIC is system-wide on Linux, so the
parent can compare it with the server's).

Control: JSON lines on stdin (``report``, ``stop``), answers on stdout
(``{"connected": ...}`` once every node tried to connect). Stops by itself after
``--max-seconds`` and when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.sslproto
import json
import random
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from beehive import codec
from beehive.constants import OP_RESPONSE
from beehive.message import Message
from bench import raise_nofile
from kecommon import certs

PROJECT = "e632aba927ea4ac2b575ec1603d56f10"

# Load generator only (not the product): asyncio gives every TLS connection a
# 256 KiB read buffer; thousands of simulated nodes in one process do not need
# that, and the machine is shared.
asyncio.sslproto.SSLProtocol.max_size = 32 * 1024


def issue(ca: certs.CertPair, node: str, directory: Path, ca_der: bytes) -> ssl.SSLContext:
    """A client TLS context presenting a fresh certificate for ``node``."""
    key = certs.new_key()
    csr = x509.load_der_x509_csr(certs.new_csr(node, key))
    cert = certs.sign_edge_cert(ca, csr, days=1)
    crt_path, key_path = directory / f"{node}.crt", directory / f"{node}.key"
    crt_path.write_bytes(certs.cert_to_pem(cert))
    key_path.write_bytes(certs.key_to_pem(key))
    ctx = ssl.create_default_context(cadata=ca_der)
    ctx.load_cert_chain(crt_path, key_path)
    return ctx


def keepalive() -> bytes:
    return codec.encode(
        Message.new(
            source="websocket",
            group="resource",
            operation="keepalive",
            resource="node",
            content="ping",
        )
    )


class Edges:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.conns: dict[str, ClientConnection] = {}
        self.failed: dict[str, str] = {}
        self.received: dict[str, float] = {}
        #: wire resource (``<ns>/pod/<name>``) -> when its first frame arrived
        self.first_by_resource: dict[str, float] = {}
        self.keepalives = 0
        self.acks = 0
        self.closed: dict[str, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def connect_all(self, nodes: list[str], contexts: dict[str, ssl.SSLContext]) -> None:
        sem = asyncio.Semaphore(self.args.concurrency)

        async def one(node: str) -> None:
            async with sem:
                try:
                    ws = await connect(
                        f"wss://localhost:{self.args.port}/{PROJECT}/{node}/events",
                        ssl=contexts.pop(node),
                        additional_headers={
                            "Node_id": node,
                            "Project_id": PROJECT,
                            "Connectionuse": "msg",
                        },
                        open_timeout=60,
                        ping_interval=None,
                        compression=None,
                        max_size=32 * 1024 * 1024,
                    )
                except Exception as exc:
                    self.failed[node] = f"{type(exc).__name__}: {exc}"
                    return
            self.conns[node] = ws
            for body in (self._keepalive_loop(node, ws), self._read_loop(node, ws)):
                task = asyncio.create_task(body)
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        await asyncio.gather(*(one(n) for n in nodes))

    async def _keepalive_loop(self, node: str, ws: ClientConnection) -> None:
        period = self.args.heartbeat
        await asyncio.sleep(random.uniform(0, period))
        frame = keepalive()
        try:
            while True:
                await ws.send(frame.decode())
                self.keepalives += 1
                await asyncio.sleep(period)
        except ConnectionClosed:
            return

    async def _read_loop(self, node: str, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                now = time.monotonic()
                msg = codec.decode(data)
                self.received[msg.msg_id] = now
                self.first_by_resource.setdefault(msg.resource, now)
                if msg.operation != OP_RESPONSE:
                    await ws.send(codec.encode(msg.response("OK")).decode())
                    self.acks += 1
        except ConnectionClosed as exc:
            self.closed[node] = str(exc)
            return
        self.closed[node] = f"closed ({ws.close_code} {ws.close_reason})"

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.conns.values()), return_exceptions=True)


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def amain(args: argparse.Namespace, ca: certs.CertPair) -> int:
    ca_der = certs.cert_to_der(ca.cert)
    nodes = [f"{args.prefix}{i}" for i in range(args.first, args.first + args.count)]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-edges-") as tmp:
        contexts = {n: issue(ca, n, Path(tmp), ca_der) for n in nodes}
    certs_s = time.monotonic() - start
    edges = Edges(args)
    start = time.monotonic()
    await edges.connect_all(nodes, contexts)
    emit(
        {
            "connected": len(edges.conns),
            "failed": len(edges.failed),
            "first_failures": list(edges.failed.items())[:3],
            "certs_s": certs_s,
            "connect_s": time.monotonic() - start,
        }
    )
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    deadline = time.monotonic() + args.max_seconds
    try:
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), deadline - time.monotonic())
            except TimeoutError:
                return 0
            if not line:
                return 0
            cmd = json.loads(line).get("cmd")
            if cmd == "report":
                emit(
                    {
                        "open": sum(1 for ws in edges.conns.values() if ws.close_code is None),
                        "closed": len(edges.closed),
                        "first_closed": list(edges.closed.items())[:3],
                        "keepalives": edges.keepalives,
                        "acks": edges.acks,
                        "received": edges.received,
                        "first_by_resource": edges.first_by_resource,
                        "cpu_s": time.process_time(),
                    }
                )
                edges.received = {}
                edges.first_by_resource = {}
            elif cmd == "stop":
                emit({"stopped": True})
                return 0
    finally:
        await edges.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edgeclients")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-cert", required=True)
    parser.add_argument("--ca-key", required=True)
    parser.add_argument("--prefix", default="bench-node-")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--heartbeat", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32, help="handshakes at once")
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    raise_nofile(args.count + 256)
    ca = certs.CertPair(
        certs.cert_from_bytes(Path(args.ca_cert).read_bytes()),
        certs.key_from_bytes(Path(args.ca_key).read_bytes()),
    )
    return asyncio.run(amain(args, ca))


if __name__ == "__main__":
    sys.exit(main())
