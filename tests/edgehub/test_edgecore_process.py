"""The ``edgecore --config FILE`` process: bootstrap, connect, SIGTERM, clear errors."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from beehive.message import Message
from fixtures.minicloud import MiniCloud


def _write_config(cloud: MiniCloud, tmp_path: Path, *, token: str, node: str = "proc-edge") -> Path:
    cfg = {
        "apiVersion": "edgecore.config.kubeedge.io/v1alpha2",
        "kind": "EdgeCore",
        "database": {"dataSource": str(tmp_path / "edgecore.db")},
        "modules": {
            "edged": {"enable": False, "hostnameOverride": node},
            "eventBus": {"enable": False},
            "deviceTwin": {"enable": False},
            "edgeHub": {
                "heartbeat": 1,
                "httpServer": cloud.http_server,
                "token": token,
                "tlsCaFile": str(tmp_path / "ca" / "rootCA.crt"),
                "tlsCertFile": str(tmp_path / "certs" / "server.crt"),
                "tlsPrivateKeyFile": str(tmp_path / "certs" / "server.key"),
                "websocket": {"enable": True, "server": cloud.ws_server},
                "quic": {"enable": False},
            },
        },
    }
    path = tmp_path / "edgecore.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def _start(config: Path) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edgecore",
        "--config",
        str(config),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        _, err = await proc.communicate()
    return proc.returncode or 0, err.decode()


async def test_process_joins_acks_and_stops_on_sigterm(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    config = _write_config(minicloud, tmp_path, token=minicloud.token())
    proc = await _start(config)
    try:
        await minicloud.wait_for(lambda: minicloud.upgrades, timeout=20)
        assert minicloud.upgrades[0].path.endswith("/proc-edge/events")
        # keepalives every heartbeat (1 s)
        await minicloud.wait_for(
            lambda: sum(m.operation == "keepalive" for m in minicloud.received) >= 2, timeout=5
        )
        # a cloud push is stored in database.dataSource and acked
        cm: dict[str, Any] = {"kind": "ConfigMap", "metadata": {"name": "c", "uid": "1"}}
        push = Message.new(
            source="edgecontroller",
            group="resource",
            operation="insert",
            resource="default/configmap/c",
            content=cm,
            resource_version="1",
        )
        await minicloud.send(push)
        await minicloud.wait_message(lambda m: m.parent_id == push.msg_id)
        # the token is dropped from the config file after the bootstrap
        assert yaml.safe_load(config.read_text())["modules"]["edgeHub"]["token"] == ""
    finally:
        code, err = await _stop(proc)
    assert code == 0, err
    with sqlite3.connect(tmp_path / "edgecore.db") as conn:
        (value,) = conn.execute("select value from meta where key='default/configmap/c'").fetchone()
    assert value.startswith("{")


async def test_restart_with_the_cloud_down_keeps_running(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    config = _write_config(minicloud, tmp_path, token=minicloud.token())
    proc = await _start(config)
    try:
        await minicloud.wait_for(lambda: minicloud.upgrades, timeout=20)
    finally:
        assert (await _stop(proc))[0] == 0
    await minicloud.stop()
    proc = await _start(config)  # cloud unreachable, certificate already on disk
    assert proc.stderr is not None
    seen = 0
    try:
        # it retries with back-off instead of exiting
        async with asyncio.timeout(20):
            while seen < 3:
                line = (await proc.stderr.readline()).decode()
                assert line, "edgecore exited while the cloud was down"
                seen += "cannot connect to the cloud" in line
        assert proc.returncode is None
    finally:
        code, _ = await _stop(proc)
    assert code == 0


async def test_ca_hash_mismatch_exits_with_a_clear_error(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    config = _write_config(minicloud, tmp_path, token=minicloud.token(ca_hash="00" * 32))
    proc = await _start(config)
    code, err = await _stop_when_done(proc)
    assert code == 1
    assert "CA hash mismatch" in err


async def test_invalid_config_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "edgecore.yaml"
    path.write_text(
        "apiVersion: edgecore.config.kubeedge.io/v1alpha2\nkind: EdgeCore\n"
        "modules:\n  edgeHub:\n    quic: {enable: true}\n"
    )
    code, err = await _stop_when_done(await _start(path))
    assert code == 1
    assert "exactly one of websocket and quic" in err
    assert "Traceback" not in err


async def _stop_when_done(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    return proc.returncode or 0, err.decode()
