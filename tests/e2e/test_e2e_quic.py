"""The same path over QUIC: the edge joins cloudhub's QUIC server and runs a pod.

One stack for the module with ``transport="quic"`` (docs/protocol-quic.md): the
edge's link is QUIC only (websocket disabled on the edge, as KubeEdge requires
exactly one), so the node turning Ready and the pod's status arriving prove the
QUIC link carries registration, pod delivery and status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import kubeclient
from e2e.helpers import IDLE, busybox, configmap, create, pod, require_machine, stack_settings
from edgecore.edged.cri import CRIClient
from keadm.devstack import DevStack, StackError, wait_for
from keadm.devstack.crilog import read_container_log
from keadm.devstack.workload import container_id, is_running_and_ready
from kecommon.config import load_edgecore_config

pytestmark = [pytest.mark.e2e, pytest.mark.containerd, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def edge_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevStack]:
    require_machine()
    settings = dataclasses.replace(
        stack_settings(tmp_path_factory.mktemp("quicstack")), transport="quic"
    )
    stack = DevStack(settings)
    try:
        await stack.start()
    except StackError as exc:
        await stack.stop()
        pytest.fail(f"the QUIC stack did not start: {exc}")
    try:
        yield stack
    finally:
        await stack.stop()


async def test_edge_over_quic_runs_a_pod(edge_stack: DevStack, namespace: str) -> None:
    cfg = load_edgecore_config(Path(edge_stack.edge_paths.config), report=False)
    assert cfg.modules.edge_hub.quic.enable and not cfg.modules.edge_hub.websocket.enable
    await edge_stack.wait_node_ready()

    await create(edge_stack, kubeclient.CONFIGMAPS,
                 configmap(namespace, "quic-config", {"word": "over-quic"}))
    container = busybox(
        "app", 'echo "word=$(cat /etc/q/word)"; ' + IDLE,
        volumeMounts=[{"name": "config", "mountPath": "/etc/q"}],
    )
    await create(edge_stack, kubeclient.PODS, pod(
        namespace, "quic", edge_stack.node_name, [container],
        volumes=[{"name": "config", "configMap": {"name": "quic-config"}}],
    ))
    p = await edge_stack.wait_pod(namespace, "quic", is_running_and_ready,
                                  what="to be Running and Ready", timeout=60)
    cid = container_id(p, "app")
    assert cid
    async with CRIClient(edge_stack.runtime_endpoint) as cri:

        async def logged() -> list[str] | None:
            return await read_container_log(cri, cid) or None

        assert (await wait_for(logged, what="the log line", timeout=20))[0] == "word=over-quic"
