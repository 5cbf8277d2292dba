"""The stack launcher's own contract: its configs, its steps, its clean stop.

These run without cloudcore and edgecore: the config files must load in the
loaders cloudcore and edgecore use and keep every path inside the work dir;
the API and containerd steps must start and stop only their own processes;
a failing step must be named with its cause.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import kubeclient
from e2e.helpers import demo_env, processes_mentioning, require_machine, stack_settings
from fixtures.apiserver import KubeApi
from keadm.devstack import DevStack, StackError, StackSettings, configs, free_tcp_port
from kecommon.config import load_cloudcore_config, load_edgecore_config


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _paths_outside(text: str, base: Path) -> list[str]:
    """Path-like values (absolute or unix://) that are not under ``base``."""
    out = []
    for value in _strings(yaml.safe_load(text)):
        path = value.removeprefix("unix://")
        if path.startswith("/") and not path.startswith(str(base) + "/"):
            out.append(value)
    return out


def test_configs_load_and_stay_inside_the_work_dir(tmp_path: Path) -> None:
    ports = configs.CloudPorts(websocket=free_tcp_port(), https=free_tcp_port(),
                               quic=40001, monitor=free_tcp_port())
    kubeconfig = tmp_path / "kubeconfig"
    cloud = configs.CloudcorePaths(tmp_path / "cloudcore")
    edge = configs.EdgecorePaths(tmp_path / "edgecore")
    cloud_text = configs.render_cloudcore(
        configs.cloudcore_config(kubeconfig=kubeconfig, ports=ports, paths=cloud))
    edge_text = configs.render_edgecore(configs.edgecore_config(
        node_name="edge-1", token="tok", ports=ports, paths=edge,
        runtime_endpoint=f"unix://{tmp_path}/containerd.sock", sandbox_image="kubeedge/pause:3.6",
    ))
    assert _paths_outside(cloud_text, tmp_path) == []
    assert _paths_outside(edge_text, tmp_path) == []

    cloud.base.mkdir()
    cloud.config.write_text(cloud_text)
    cc = load_cloudcore_config(cloud.config, report=False)
    hub = cc.modules.cloud_hub
    assert hub.advertise_address == ["127.0.0.1"]
    assert (hub.websocket.address, hub.websocket.port) == ("127.0.0.1", ports.websocket)
    assert (hub.https.address, hub.https.port) == ("127.0.0.1", ports.https)
    assert hub.authorization.enable and not hub.authorization.debug
    assert cc.kube_api_config.kube_config == str(kubeconfig)

    edge.base.mkdir()
    edge.config.write_text(edge_text)
    ec = load_edgecore_config(edge.config, report=False)
    eh = ec.modules.edge_hub
    assert eh.websocket.enable and not eh.quic.enable
    assert eh.websocket.server == f"127.0.0.1:{ports.websocket}"
    assert eh.http_server == f"https://127.0.0.1:{ports.https}"
    assert eh.token == "tok"
    assert ec.modules.edged.hostname_override == "edge-1"
    # nothing the stack sets is reported as "accepted but not implemented" at start
    assert ec.unimplemented() == []
    assert not ec.modules.event_bus.enable and not ec.modules.device_twin.enable


@pytest.mark.e2e
@pytest.mark.containerd
async def test_api_and_containerd_steps_start_and_stop_cleanly(tmp_path: Path) -> None:
    require_machine()
    stack = DevStack(stack_settings(tmp_path / "stack"))
    try:
        await stack.start_api()
        await stack.start_containerd()
        # The CRDs keadm init would install are served.
        await stack.client().list(kubeclient.OBJECTSYNCS, namespace="default")
        assert stack.runtime_endpoint.startswith("unix://" + str(tmp_path))
        if stack.uses_devkube:
            assert stack.devkube is not None and stack.devkube.running
        assert processes_mentioning(str(tmp_path)) != []
    finally:
        await stack.stop()
    await stack.stop()  # idempotent
    assert processes_mentioning(str(tmp_path)) == []


async def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    stack = DevStack(StackSettings(work_dir=tmp_path, kubeconfig=tmp_path / "nope"))
    with pytest.raises(StackError) as err:
        async with stack:
            pass
    assert err.value.step == "Kubernetes API"
    assert "nope does not exist" in str(err.value)


@pytest.mark.e2e
@pytest.mark.containerd
def test_demo_names_the_failed_step(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "keadm.devstack", "--work-dir", str(work),
         "--kubeconfig", str(tmp_path / "missing-kubeconfig")],
        env=demo_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "step Kubernetes API failed" in proc.stdout
    assert "missing-kubeconfig does not exist" in proc.stdout
    assert processes_mentioning(str(work)) == []


def test_demo_refuses_a_work_dir_in_use(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "keadm.devstack", "--work-dir", str(tmp_path)],
        env={**demo_env(), "PATH": os.environ.get("PATH", "")},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 1
    assert "is not empty" in proc.stdout


async def test_api_step_uses_the_given_cluster(tmp_path: Path, kube_api: KubeApi) -> None:
    stack = DevStack(StackSettings(work_dir=tmp_path / "stack", kubeconfig=kube_api.kubeconfig))
    try:
        await stack.start_api()
        assert not stack.uses_devkube and stack.devkube is None
        assert stack.client().server.rstrip("/") == kube_api.server
        assert "Kubernetes API" not in stack.logs
        # The CRDs are installed in that cluster.
        await kube_api.request("GET", "/apis/reliablesyncs.kubeedge.io/v1alpha1/objectsyncs")
    finally:
        await stack.stop()
    assert not (tmp_path / "stack" / "devkube").exists()


def test_missing_containerd_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from keadm.devstack import demo, requirements

    # A machine without containerd, where scripts/setup cannot run (not Debian).
    monkeypatch.setattr(requirements, "missing_requirements", lambda: ["/usr/bin/containerd"])
    monkeypatch.setattr(requirements, "is_debian", lambda: False)
    buf = io.StringIO()
    code = demo._check_requirements(Console(file=buf, width=200), tmp_path)
    text = buf.getvalue()
    assert code == demo.EXIT_REQUIREMENTS
    assert "containerd needs: /usr/bin/containerd" in text
    assert "scripts/setup" in text and "apt-get install containerd" in text
