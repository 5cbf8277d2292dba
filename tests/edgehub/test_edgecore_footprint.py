"""What a running ``edgecore --config FILE`` has imported (docs/performance.md, edgecore memory).

edgecore's resident memory at idle is mostly the code it has imported, so
what it must not import is a behaviour worth keeping: a node with a valid
certificate never loads the HTTP client used to fetch one (aiohttp) nor the
JWT library for the bootstrap token, a WebSocket node never loads QUIC
(aioquic), the eventbus is not built (no MQTT libraries), the store uses
SQLAlchemy Core (no ORM), the CLI does not pull in rich, and the edge never
builds cloudcore's config models.

The process runs as in production (``python -m edgecore --config``), connected
to a real WebSocket cloud, with edged enabled; the list of modules is written
at interpreter exit, after SIGTERM.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from cryptography import x509

from fixtures.minicloud import MiniCloud
from kecommon import certs

NODE = "footprint-edge"

#: imported only when needed, and not needed by this node
MUST_NOT_IMPORT = [
    "aiohttp",  # certificate bootstrap and rotation only
    "jwt",  # the bootstrap token only
    "aioquic",  # the QUIC transport only
    "amqtt",  # eventbus: not built
    "aiomqtt",
    "paho",
    "rich",  # typer's pretty errors and help
    "sqlalchemy.orm",  # the store is SQLAlchemy Core
    "kecommon.config.cloudcore",  # cloudcore's config models
    "kecommon.config.cloudload",
    "kubeclient",  # cloud side only
    "kubernetes",
]

#: what a running edgecore does import: proves the probe saw a real run
MUST_IMPORT = [
    "kecommon.config.edgecore",
    "websockets.asyncio.client",
    "sqlalchemy",
    "edgecore.metamanager.store",
    "edgecore.edgehub.transport.ws",
    "edgecore.edged.module",
    "grpc",
]

# Runs edgecore exactly as ``python -m edgecore`` does and writes sys.modules at exit.
PROBE = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "edgecore"
runpy.run_module("edgecore", run_name="__main__", alter_sys=True)
"""


def _node_certificate(cloud: MiniCloud, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA file and a valid node certificate and key on disk: no bootstrap needed."""
    key = certs.new_key()
    csr = x509.load_der_x509_csr(certs.new_csr(NODE, key))
    cert_der = cloud.pki.sign(csr, dt.timedelta(days=365))
    ca, crt, pem_key = tmp_path / "ca.crt", tmp_path / "node.crt", tmp_path / "node.key"
    ca.write_bytes(cloud.pki.ca_pem)
    crt.write_bytes(certs.cert_to_pem(x509.load_der_x509_certificate(cert_der)))
    pem_key.write_bytes(certs.key_to_pem(key))
    return ca, crt, pem_key


def _config(cloud: MiniCloud, tmp_path: Path) -> Path:
    ca, crt, key = _node_certificate(cloud, tmp_path)
    cfg = {
        "apiVersion": "edgecore.config.kubeedge.io/v1alpha2",
        "kind": "EdgeCore",
        "database": {"dataSource": str(tmp_path / "edgecore.db")},
        "modules": {
            "edged": {
                "enable": True,
                "hostnameOverride": NODE,
                # nothing listens there: edged starts (and imports its CRI client), then retries
                "tailoredKubeletConfig": {
                    "containerRuntimeEndpoint": f"unix://{tmp_path / 'no-containerd.sock'}"
                },
            },
            "eventBus": {"enable": False},
            "deviceTwin": {"enable": False},
            "edgeHub": {
                "heartbeat": 1,
                "httpServer": cloud.http_server,
                "token": "",
                "tlsCaFile": str(ca),
                "tlsCertFile": str(crt),
                "tlsPrivateKeyFile": str(key),
                "websocket": {"enable": True, "server": cloud.ws_server},
                "quic": {"enable": False},
            },
        },
    }
    path = tmp_path / "edgecore.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def test_running_edgecore_imports_only_what_it_uses(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    config = _config(minicloud, tmp_path)
    modules_file = tmp_path / "modules.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROBE,
        str(modules_file),
        "--config",
        str(config),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # connected, and past start-up: keepalives flow every heartbeat (1 s)
        await minicloud.wait_for(
            lambda: sum(m.operation == "keepalive" for m in minicloud.received) >= 2, timeout=30
        )
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert not minicloud.issued, "the node bootstrapped a certificate: the probe is not idle"
    loaded = set(json.loads(modules_file.read_text()))

    def imported(name: str) -> bool:
        return name in loaded or any(m.startswith(name + ".") for m in loaded)

    assert [m for m in MUST_IMPORT if not imported(m)] == []
    assert [m for m in MUST_NOT_IMPORT if imported(m)] == []
