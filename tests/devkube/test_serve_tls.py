"""``devkube serve`` serves HTTPS unless told ``--no-tls``: the kubeconfig it writes
works with kubectl, which sends no bearer token over plain HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

KUBECTL = shutil.which("kubectl")
TIMEOUT = 60.0


@dataclass
class Served:
    kubeconfig: Path
    cluster: dict[str, str]  # the kubeconfig's cluster entry
    token: str


@asynccontextmanager
async def serve(tmp_path: Path, *flags: str) -> AsyncIterator[Served]:
    """Run ``devkube serve --port 0 --kubeconfig K *flags`` until the block ends."""
    kubeconfig = tmp_path / "k"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devkube", "serve", "--port", "0", "--kubeconfig",
        str(kubeconfig), *flags,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        # devkube renames the kubeconfig into place once it listens.
        while not kubeconfig.exists():
            assert proc.returncode is None, "devkube serve exited"
            assert time.monotonic() < deadline, "no kubeconfig written"
            await asyncio.sleep(0.05)
        cfg = yaml.safe_load(kubeconfig.read_text())
        yield Served(kubeconfig, cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]["token"])
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            assert await proc.wait() == 0


async def kubectl(tmp_path: Path, kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    # scripts/setup installs kubectl: its absence is a failure, not a skip.
    assert KUBECTL is not None, "kubectl is not installed: run scripts/setup"
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    env.pop("KUBECONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_serve_defaults_to_https_and_kubectl_works(tmp_path: Path) -> None:
    async with serve(tmp_path) as served:
        assert served.cluster["server"].startswith("https://127.0.0.1:")
        assert served.cluster["certificate-authority-data"]
        code, out, err = await kubectl(tmp_path, served.kubeconfig, "get", "ns")
        assert code == 0, err
        names = [line.split()[0] for line in out.splitlines()[1:]]
        assert "default" in names and "kube-system" in names


async def test_tls_flag_still_accepted(tmp_path: Path) -> None:
    async with serve(tmp_path, "--tls") as served:
        assert served.cluster["server"].startswith("https://")
        code, out, err = await kubectl(tmp_path, served.kubeconfig, "get", "ns", "default")
        assert code == 0, err
        assert out.splitlines()[1].split()[:2] == ["default", "Active"]


async def test_no_tls_serves_plain_http(tmp_path: Path) -> None:
    async with serve(tmp_path, "--no-tls") as served:
        server = served.cluster["server"]
        assert server.startswith("http://127.0.0.1:")
        assert "certificate-authority-data" not in served.cluster
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{server}/api/v1/namespaces",
                  headers={"Authorization": f"Bearer {served.token}"}) as r,
        ):
            assert r.status == 200
