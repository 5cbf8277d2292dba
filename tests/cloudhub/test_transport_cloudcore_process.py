"""``cloudcore --config FILE`` as a real process against the API server.

Bootstrap an edge certificate with the token from ``kubeedge/tokensecret``,
connect over WebSocket and QUIC, read the metrics, and stop it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from beehive import codec
from beehive.message import Message
from cloudcore.crds import install_crds
from fixtures.hubpki import edge_headers, wait_for
from fixtures.hubquic import client_config, quic_edge
from kecommon import certs, token
from kubeclient import KubeClient


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def cloudcore(kube_api: Any, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    # keadm/Helm install the CRDs, not cloudcore; do it as they would.
    async with await KubeClient.from_kubeconfig(kube_api.kubeconfig) as admin:
        await install_crds(admin)
    ports = {
        "ws": free_port(),
        "https": free_port(),
        "quic": free_port(socket.SOCK_DGRAM),
        "metrics": free_port(),
    }
    config = {
        "apiVersion": "cloudcore.config.kubeedge.io/v1alpha1",
        "kind": "CloudCore",
        "kubeAPIConfig": {"kubeConfig": str(kube_api.kubeconfig)},
        "commonConfig": {"monitorServer": {"bindAddress": f"127.0.0.1:{ports['metrics']}"}},
        "modules": {
            "cloudHub": {
                "advertiseAddress": ["127.0.0.1"],
                "dnsNames": ["localhost"],
                "tlsCAFile": str(tmp_path / "ca" / "rootCA.crt"),
                "tlsCAKeyFile": str(tmp_path / "ca" / "rootCA.key"),
                "tlsCertFile": str(tmp_path / "certs" / "server.crt"),
                "tlsPrivateKeyFile": str(tmp_path / "certs" / "server.key"),
                "websocket": {"address": "127.0.0.1", "port": ports["ws"]},
                "https": {"address": "127.0.0.1", "port": ports["https"]},
                "quic": {"enable": True, "address": "127.0.0.1", "port": ports["quic"]},
            },
        },
    }
    path = tmp_path / "cloudcore.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    log = (tmp_path / "cloudcore.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cloudcore",
        "--config",
        str(path),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    info = {"proc": proc, "ports": ports, "log": tmp_path / "cloudcore.log"}
    try:
        yield info
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


def log_of(info: dict[str, Any]) -> str:
    return str(info["log"].read_text(errors="replace"))


async def get(url: str, **kw: Any) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, **kw) as resp:
        return resp.status, await resp.read()


async def wait_ready(info: dict[str, Any]) -> bytes:
    deadline = time.monotonic() + 30
    url = f"https://127.0.0.1:{info['ports']['https']}/ca.crt"
    while True:
        assert info["proc"].returncode is None, log_of(info)
        try:
            status, body = await get(url, ssl=False)
            if status == 200:
                return body
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, "cloudcore did not come up:\n" + log_of(info)
        await asyncio.sleep(0.1)


async def metric(port: int, line_start: str) -> float | None:
    _, body = await get(f"http://127.0.0.1:{port}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.e2e
async def test_cloudcore_process_end_to_end(
    cloudcore: dict[str, Any], kube_api: Any, tmp_path: Path
) -> None:
    ports = cloudcore["ports"]
    ca_der = await wait_ready(cloudcore)
    sec = await kube_api.request("GET", "/api/v1/namespaces/kubeedge/secrets/tokensecret")
    import base64

    join_token = base64.b64decode(sec["data"]["tokendata"]).decode()
    jwt = token.verify_ca(join_token, ca_der)  # the edge's check of /ca.crt
    ca_pem = certs.cert_to_pem(certs.cert_from_bytes(ca_der))
    edge_ctx = ssl.create_default_context(cadata=ca_der)  # hostname verification on

    # keadm join's pre-check, then a Node appears.
    node = f"edge-{os.getpid()}"
    base = f"https://localhost:{ports['https']}"
    assert await get(f"{base}/node/{node}", ssl=edge_ctx) == (404, b"Node not found")
    await kube_api.make_node(name=node, labels={"node-role.kubernetes.io/edge": ""})
    assert await get(f"{base}/node/{node}", ssl=edge_ctx) == (200, b"Node found")

    # Bootstrap: token -> certificate.
    key = certs.new_key()
    status, der = await get(
        f"{base}/edge.crt",
        ssl=edge_ctx,
        data=certs.new_csr(node, key),
        headers={"NodeName": node, "Authorization": f"Bearer {jwt}"},
    )
    assert status == 200, der
    (tmp_path / "edge.crt").write_bytes(certs.cert_to_pem(certs.cert_from_bytes(der)))
    (tmp_path / "edge.key").write_bytes(certs.key_to_pem(key))
    edge_ctx.load_cert_chain(tmp_path / "edge.crt", tmp_path / "edge.key")

    keepalive = Message.new(
        source="websocket", group="resource", operation="keepalive", resource="node", content="ping"
    )
    async with await connect(
        f"wss://localhost:{ports['ws']}/e632aba927ea4ac2b575ec1603d56f10/{node}/events",
        ssl=edge_ctx,
        additional_headers=edge_headers(node),
    ) as ws:
        await ws.send(codec.encode(keepalive))
        assert await wait_for_metric(ports["metrics"], "cloudhub_connected_nodes", 1.0)
        assert (
            await metric(ports["metrics"], 'cloudhub_open_connections{transport="websocket"}')
            == 1.0
        )

        # The same node over QUIC replaces the WebSocket session.
        config = client_config(ca_pem, (tmp_path / "edge.crt", tmp_path / "edge.key"))
        async with quic_edge(ports["quic"], config) as quic:
            reply = await quic.session(edge_headers(node))
            assert reply.content == "ack"
            quic.send(keepalive)
            with pytest.raises(ConnectionClosed) as err:
                async with asyncio.timeout(10):
                    while True:  # downstream messages (the node object) may come first
                        await ws.recv()
            assert err.value.rcvd is not None and err.value.rcvd.code == 4000
            quic.close()

    proc = cloudcore["proc"]
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0, log_of(cloudcore)
    assert "module cloudhub stopped" in log_of(cloudcore)


async def wait_for_metric(port: int, name: str, value: float) -> bool:
    last: list[float | None] = [None]

    async def probe() -> bool:
        last[0] = await metric(port, name)
        return last[0] == value

    deadline = time.monotonic() + 10
    while not await probe():
        assert time.monotonic() < deadline, f"{name} = {last[0]}, want {value}"
        await asyncio.sleep(0.05)
    return True


_ = wait_for  # re-exported helper kept for symmetry with the other transport tests
