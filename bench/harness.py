"""Starting and talking to the benchmark's subprocesses (hub server, edge clients).

Every child gets a JSON-lines control channel on stdin/stdout, a deadline of
its own (``--max-seconds``) and stops when its stdin closes, so nothing
outlives the benchmark even if the parent dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench import subprocess_env
from kecommon import certs

__all__ = ["Child", "edge_fleet", "free_port", "hub_server", "write_ca"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_ca(directory: Path) -> tuple[Path, Path]:
    """A fresh KubeEdge CA in ``directory`` (ca.crt, ca.key), as cloudcore would make it."""
    ca = certs.new_ca()
    crt, key = directory / "ca.crt", directory / "ca.key"
    crt.write_bytes(certs.cert_to_pem(ca.cert))
    key.touch(mode=0o600)
    key.write_bytes(certs.key_to_pem(ca.key))
    return crt, key


class Child:
    """One subprocess speaking JSON lines."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, stderr: Path) -> None:
        self.name = name
        self.proc = proc
        self.stderr = stderr

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                code = await self.proc.wait()
                tail = self.stderr.read_text(errors="replace").splitlines()[-5:]
                raise RuntimeError(f"{self.name} exited with code {code}: {tail}")
            line = line.strip()
            if line.startswith(b"{"):
                answer: dict[str, Any] = json.loads(line)
                return answer

    async def ask(self, cmd: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        answer = await self.read(timeout)
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {answer['error']}")
        return answer

    async def stop(self, timeout: float = 20) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _spawn(name: str, args: list[str], stderr: Path) -> Child:
    with stderr.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env=subprocess_env(),
            limit=256 * 1024 * 1024,  # reports carry every msg_id
        )
    return Child(name, proc, stderr)


@contextlib.asynccontextmanager
async def hub_server(
    workdir: Path,
    *,
    keepalive: int = 30,
    trace: bool = False,
    max_seconds: float = 900,
    profile: Path | None = None,
    record_delay: float = 0.0,
) -> AsyncIterator[tuple[Child, dict[str, Any]]]:
    """Start ``bench.hubserver``; yield (child, its ready line)."""
    args = [
        "-m",
        "bench.hubserver",
        "--dir",
        str(workdir),
        "--port",
        str(free_port()),
        "--keepalive",
        str(keepalive),
        "--max-seconds",
        str(max_seconds),
        "--log",
        str(workdir / "hubserver.log"),
    ]
    if trace:
        args.append("--trace")
    if profile is not None:
        args += ["--profile", str(profile)]
    if record_delay:
        args += ["--record-delay", str(record_delay)]
    child = await _spawn("hubserver", args, workdir / "hubserver.stderr")
    try:
        ready = await child.read(timeout=60)
        yield child, ready
    finally:
        with contextlib.suppress(Exception):
            await child.ask({"cmd": "stop"}, timeout=30)
        await child.stop()


@contextlib.asynccontextmanager
async def edge_fleet(
    workdir: Path,
    *,
    port: int,
    nodes: int,
    procs: int,
    heartbeat: float = 15.0,
    max_seconds: float = 900,
    prefix: str = "bench-node-",
) -> AsyncIterator[list[Child]]:
    """Start ``procs`` edge client processes sharing ``nodes`` nodes (not yet connected)."""
    children: list[Child] = []
    per = -(-nodes // procs)
    try:
        for i in range(procs):
            first, count = i * per, min(per, nodes - i * per)
            if count <= 0:
                break
            args = [
                "-m",
                "bench.edgeclients",
                "--port",
                str(port),
                "--ca-cert",
                str(workdir / "ca.crt"),
                "--ca-key",
                str(workdir / "ca.key"),
                "--prefix",
                prefix,
                "--first",
                str(first),
                "--count",
                str(count),
                "--heartbeat",
                str(heartbeat),
                "--max-seconds",
                str(max_seconds),
            ]
            children.append(await _spawn(f"edges-{i}", args, workdir / f"edges-{i}.stderr"))
        yield children
    finally:
        await asyncio.gather(*(c.stop() for c in children), return_exceptions=True)
