"""Shared pieces of the resilience tests (tests/e2e/test_e2e_resilience_*.py).

``start_blip_stack`` builds a :class:`DevStack` with short timeouts (edge
keepalive, cloudcore keepalive, node grace period) and, optionally, a
:class:`BlipProxy` between edgecore and cloudcore's WebSocket port. The store
readers open metamanager's SQLite file read-only beside the running edgecore.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import kubeclient
from e2e.blipproxy import BlipProxy
from e2e.helpers import require_machine, stack_settings
from keadm.devstack import DevStack, StackError
from kecommon.config import CloudCoreConfig, EdgeCoreConfig

#: seconds: edgehub keepalive period
EDGE_HEARTBEAT = 2
#: seconds without a keepalive before cloudcore ends a node's session
CLOUD_KEEPALIVE = 4
#: seconds a node may be silent before edgecontroller marks it Unknown
GRACE = 5
#: edged's lease duration; renewed every quarter of it (1 s), so well within GRACE
#: even on a loaded machine (a real cluster keeps 40 s against 10 s)
LEASE = 4


def _tails(stack: DevStack, lines: int = 30) -> str:
    out = []
    for title, path in stack.logs.items():
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        out.append(f"--- {title}: {path}\n" + "\n".join(text))
    return "\n".join(out)


@dataclass
class BlipStack:
    stack: DevStack
    proxy: BlipProxy | None


def tune_cloudcore(cfg: CloudCoreConfig) -> None:
    cfg.modules.cloud_hub.keepalive_interval = CLOUD_KEEPALIVE
    cfg.modules.edge_controller.node_update_frequency = 1
    cfg.modules.edge_controller.node_monitor_grace_period = GRACE


async def start_blip_stack(work_dir: Path, *, proxy: bool) -> BlipStack:
    """Start the stack (with the proxy on the edge's WebSocket path when ``proxy``)."""
    require_machine()
    blip: BlipProxy | None = None

    def tune_edgecore(cfg: EdgeCoreConfig) -> None:
        cfg.modules.edged.tailored_kubelet_config.node_lease_duration_seconds = LEASE
        if blip is not None:
            cfg.modules.edge_hub.websocket.server = blip.address

    settings = stack_settings(work_dir)
    settings.heartbeat = EDGE_HEARTBEAT
    settings.cloudcore_overrides = tune_cloudcore
    settings.edgecore_overrides = tune_edgecore
    stack = DevStack(settings)
    try:
        await stack.start_api()
        await stack.start_containerd()
        await stack.start_cloudcore()
        if proxy:
            assert stack.ports is not None
            blip = BlipProxy(stack.ports.websocket)
            await blip.start()
        await stack.start_edgecore()
    except StackError as exc:
        tails = _tails(stack)
        await stack.stop()
        if blip is not None:
            await blip.close()
        pytest.fail(f"the stack did not start: {exc}\n{tails}")
    return BlipStack(stack, blip)


async def stop_blip_stack(bs: BlipStack) -> None:
    await bs.stack.stop()
    if bs.proxy is not None:
        await bs.proxy.close()


def read_store(stack: DevStack) -> dict[str, dict[str, Any]]:
    """metamanager's ``meta`` table: key -> object (rows without a JSON object skipped)."""
    uri = f"file:{stack.edge_paths.database}?mode=ro"
    out: dict[str, dict[str, Any]] = {}
    with sqlite3.connect(uri, uri=True, timeout=5) as db:
        for key, value in db.execute("SELECT key, value FROM meta"):
            try:
                obj = json.loads(value) if value else None
            except ValueError:
                continue
            if isinstance(obj, dict):
                out[key] = obj
    return out


def stored(stack: DevStack, namespace: str, kind: str) -> dict[str, dict[str, Any]]:
    """Objects of one namespace and type in the edge store: name -> object."""
    prefix = f"{namespace}/{kind}/"
    return {k[len(prefix):]: v for k, v in read_store(stack).items() if k.startswith(prefix)}


def rv(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("resourceVersion") or 0)


async def make_namespace(stack: DevStack, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    await stack.client().create(kubeclient.NAMESPACES, {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubeedge-py.test": "true"}},
    })
    return name


async def node_not_ready(stack: DevStack) -> dict[str, Any] | None:
    node = await stack.node()
    cond = stack.ready_condition(node) if node else None
    return cond if cond is not None and cond.get("status") != "True" else None


def pending_keys(stack: DevStack) -> set[str]:
    """Keys of status patches metamanager holds for the cloud (kubeedge-py table)."""
    uri = f"file:{stack.edge_paths.database}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as db:
        return {row[0] for row in db.execute("SELECT key FROM pending_patch")}
