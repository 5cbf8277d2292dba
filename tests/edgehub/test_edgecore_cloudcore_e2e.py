"""Our edgecore process against our cloudcore process and an API server.

edged is off: the Node object is created by the test (as a registered node
would be), so this exercises exactly the parts of this package: token
bootstrap from ``kubeedge/tokensecret``, the WebSocket and QUIC links, the
objects cloudcore pushes (the node, a pod bound to it) stored in the edge's
SQLite, and the acks that make cloudcore record them in (Cluster)ObjectSync.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloudcore.crds import install_crds
from fixtures.minicloud import wait_until
from kubeclient import KubeClient

pytestmark = pytest.mark.e2e


def _port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


async def _stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        return await proc.wait()


@pytest.fixture
async def cloudcore(kube_api: Any, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with await KubeClient.from_kubeconfig(kube_api.kubeconfig) as admin:
        await install_crds(admin)
    ports = {"ws": _port(), "https": _port(), "quic": _port(socket.SOCK_DGRAM), "metrics": _port()}
    d = tmp_path / "cloud"
    config = {
        "apiVersion": "cloudcore.config.kubeedge.io/v1alpha1",
        "kind": "CloudCore",
        "kubeAPIConfig": {"kubeConfig": str(kube_api.kubeconfig)},
        "commonConfig": {"monitorServer": {"bindAddress": f"127.0.0.1:{ports['metrics']}"}},
        "modules": {
            "cloudHub": {
                "advertiseAddress": ["127.0.0.1"],
                "dnsNames": ["localhost"],
                "tlsCAFile": str(d / "rootCA.crt"),
                "tlsCAKeyFile": str(d / "rootCA.key"),
                "tlsCertFile": str(d / "server.crt"),
                "tlsPrivateKeyFile": str(d / "server.key"),
                "websocket": {"address": "127.0.0.1", "port": ports["ws"]},
                "https": {"address": "127.0.0.1", "port": ports["https"]},
                "quic": {"enable": True, "address": "127.0.0.1", "port": ports["quic"]},
            },
        },
    }
    path = tmp_path / "cloudcore.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "cloudcore.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cloudcore",
            "--config",
            str(path),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    info = {"proc": proc, "ports": ports, "log": log}
    try:
        yield info
    finally:
        if proc.returncode is None:
            await _stop(proc)


async def _token(kube_api: Any, cloud: dict[str, Any]) -> str:
    async def read() -> str | None:
        assert cloud["proc"].returncode is None, cloud["log"].read_text()
        try:
            sec = await kube_api.request("GET", "/api/v1/namespaces/kubeedge/secrets/tokensecret")
        except Exception:
            return None
        return base64.b64decode(sec["data"]["tokendata"]).decode()

    deadline = asyncio.get_running_loop().time() + 30
    while (token := await read()) is None:
        assert asyncio.get_running_loop().time() < deadline, cloud["log"].read_text()
        await asyncio.sleep(0.2)
    return token


def _edge_config(
    tmp_path: Path, cloud: dict[str, Any], node: str, token: str, *, quic: bool
) -> Path:
    ports = cloud["ports"]
    d = tmp_path / f"edge-{node}"
    cfg = {
        "apiVersion": "edgecore.config.kubeedge.io/v1alpha2",
        "kind": "EdgeCore",
        "database": {"dataSource": str(d / "edgecore.db")},
        "modules": {
            "edged": {"enable": False, "hostnameOverride": node},
            "eventBus": {"enable": False},
            "deviceTwin": {"enable": False},
            "edgeHub": {
                "heartbeat": 2,
                "httpServer": f"https://127.0.0.1:{ports['https']}",
                "token": token,
                "tlsCaFile": str(d / "ca" / "rootCA.crt"),
                "tlsCertFile": str(d / "certs" / "server.crt"),
                "tlsPrivateKeyFile": str(d / "certs" / "server.key"),
                "websocket": {"enable": not quic, "server": f"127.0.0.1:{ports['ws']}"},
                "quic": {"enable": quic, "server": f"127.0.0.1:{ports['quic']}"},
            },
        },
    }
    d.mkdir(parents=True)
    path = d / "edgecore.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _stored(db: Path, key: str) -> dict[str, Any] | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("select value from meta where key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return json.loads(row[0]) if row else None


@pytest.mark.parametrize("quic", [False, True], ids=["websocket", "quic"])
async def test_edgecore_joins_our_cloudcore_and_acks_what_it_pushes(
    cloudcore: dict[str, Any], kube_api: Any, tmp_path: Path, quic: bool
) -> None:
    token = await _token(kube_api, cloudcore)
    node = await kube_api.make_node("e2e-edge", labels={"node-role.kubernetes.io/edge": ""})
    config = _edge_config(tmp_path, cloudcore, node, token, quic=quic)
    db = config.parent / "edgecore.db"
    log = config.parent / "edgecore.log"
    with log.open("wb") as out:
        edge = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "edgecore",
            "--config",
            str(config),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        # the node object reaches the edge's store once the session is up
        def node_at_edge() -> dict[str, Any] | None:
            assert edge.returncode is None, log.read_text()
            return _stored(db, f"null/node/{node}")

        stored = await wait_until(node_at_edge, timeout=30, step=0.1)
        assert stored["metadata"]["name"] == node
        assert yaml.safe_load(config.read_text())["modules"]["edgeHub"]["token"] == ""
        # a pod bound to the node is pushed, stored, acked: cloudcore records it
        ns = await kube_api.make_namespace("e2e")
        pod = await kube_api.request(
            "POST",
            f"/api/v1/namespaces/{ns}/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p1", "namespace": ns},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            },
        )
        uid = pod["metadata"]["uid"]
        await wait_until(lambda: _stored(db, f"{ns}/pod/p1"), timeout=30, step=0.1)

        async def synced() -> bool:
            try:
                obj = await kube_api.request(
                    "GET",
                    f"/apis/reliablesyncs.kubeedge.io/v1alpha1/namespaces/{ns}"
                    f"/objectsyncs/{node}.{uid}",
                )
            except Exception:
                return False
            return bool(obj.get("status", {}).get("objectResourceVersion"))

        deadline = asyncio.get_running_loop().time() + 30
        while not await synced():
            assert asyncio.get_running_loop().time() < deadline, (
                log.read_text() + "\n---- cloudcore\n" + cloudcore["log"].read_text()
            )
            await asyncio.sleep(0.2)
        # deleting it in the API removes it from the edge's store
        await kube_api.request(
            "DELETE", f"/api/v1/namespaces/{ns}/pods/p1", {"gracePeriodSeconds": 0}
        )
        await wait_until(lambda: _stored(db, f"{ns}/pod/p1") is None, timeout=30, step=0.1)
    finally:
        code = await _stop(edge)
    assert code == 0, log.read_text()
