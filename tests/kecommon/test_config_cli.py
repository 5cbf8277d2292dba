"""`cloudcore` / `edgecore` --defaultconfig, --minconfig and --check, as processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CORES = ["cloudcore", "edgecore"]


def run(core: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    return subprocess.run(
        [sys.executable, "-m", core, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("flag", ["--defaultconfig", "--minconfig"])
def test_printed_config_checks_clean_through_stdin(core: str, flag: str) -> None:
    printed = run(core, flag)
    assert printed.returncode == 0, printed.stderr
    doc = yaml.safe_load(printed.stdout)
    kind = {"cloudcore": "CloudCore", "edgecore": "EdgeCore"}[core]
    assert doc["kind"] == kind
    assert (
        doc["apiVersion"]
        == {
            "cloudcore": "cloudcore.config.kubeedge.io/v1alpha1",
            "edgecore": "edgecore.config.kubeedge.io/v1alpha2",
        }[core]
    )
    # cloudcore --defaultconfig | cloudcore --config /dev/stdin --check
    checked = run(core, "--config", "/dev/stdin", "--check", stdin=printed.stdout)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "/dev/stdin: OK"


def test_default_cloudcore_config_has_kubeedge_keys_and_defaults() -> None:
    doc = yaml.safe_load(run("cloudcore", "--defaultconfig").stdout)
    hub = doc["modules"]["cloudHub"]
    assert hub["websocket"] == {"address": "0.0.0.0", "enable": True, "port": 10000}
    assert hub["quic"]["port"] == 10001 and hub["quic"]["enable"] is False
    assert hub["https"]["port"] == 10002
    assert hub["keepaliveInterval"] == 30
    assert hub["tlsCAFile"] == "/etc/kubeedge/ca/rootCA.crt"
    assert len(hub["advertiseAddress"]) == 1


def test_default_edgecore_config_has_kubeedge_keys_and_defaults() -> None:
    doc = yaml.safe_load(run("edgecore", "--defaultconfig").stdout)
    hub = doc["modules"]["edgeHub"]
    assert hub["heartbeat"] == 15
    assert hub["websocket"]["server"].endswith(":10000")
    assert hub["httpServer"].startswith("https://") and hub["httpServer"].endswith(":10002")
    assert hub["projectID"] == "e632aba927ea4ac2b575ec1603d56f10"
    assert "token" in hub
    assert doc["modules"]["edged"]["tailoredKubeletConfig"]["containerRuntimeEndpoint"] == (
        "unix:///run/containerd/containerd.sock"
    )


@pytest.mark.parametrize("core", CORES)
def test_check_reports_unimplemented_keys_but_passes(core: str, tmp_path: Path) -> None:
    text = {
        "cloudcore": (
            "modules:\n  router:\n    enable: true\n  policyController:\n    enable: true\n"
        ),
        "edgecore": "modules:\n  edged:\n    tailoredKubeletConfig:\n      evictionHard: {}\n",
    }[core]
    path = tmp_path / f"{core}.yaml"
    path.write_text(text)
    result = run(core, "--config", str(path), "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: OK"
    expected = {
        "cloudcore": ["modules.router", "modules.policyController"],
        "edgecore": ["modules.edged.tailoredKubeletConfig.evictionHard"],
    }[core]
    for key in expected:
        assert f"{path}: {key}:" in result.stderr


@pytest.mark.parametrize(
    ("core", "text", "key"),
    [
        (
            "cloudcore",
            "modules:\n  cloudHub:\n    websocket:\n      port: ten\n",
            "modules.cloudHub.websocket.port",
        ),
        ("cloudcore", "modules:\n  cloudHub:\n    nodeLimitt: 5\n", "modules.cloudHub.nodeLimitt"),
        ("cloudcore", "kubeAPIConfig:\n  kubeconfig: /x\n", "kubeAPIConfig.kubeconfig"),
        ("edgecore", "modules:\n  edgeHub:\n    heartbeat: fast\n", "modules.edgeHub.heartbeat"),
        ("edgecore", "modules:\n  edgeHub:\n    quic:\n      enable: true\n", "modules.edgeHub"),
        ("edgecore", "modules:\n  edged:\n    nodeIp: 1.2.3.4\n", "modules.edged.nodeIp"),
    ],
)
def test_check_fails_naming_key_and_file(core: str, text: str, key: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run(core, "--config", str(path), "--check")
    assert result.returncode == 1
    assert str(path) in result.stderr
    assert key in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("core", CORES)
def test_check_of_a_missing_file(core: str, tmp_path: Path) -> None:
    result = run(core, "--config", str(tmp_path / "absent.yaml"), "--check")
    assert result.returncode == 1
    assert "absent.yaml" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("core", CORES)
def test_defaultconfig_and_minconfig_exclude_each_other(core: str) -> None:
    result = run(core, "--defaultconfig", "--minconfig")
    assert result.returncode == 2


def test_mistyped_cloudcore_config_as_edgecore_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cloudcore.yaml"
    path.write_text(run("cloudcore", "--minconfig").stdout)
    result = run("edgecore", "--config", str(path), "--check")
    assert result.returncode == 1
    assert str(path) in result.stderr


@pytest.mark.parametrize("core", CORES)
def test_running_with_an_invalid_config_fails_before_starting(core: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("modules:\n  bogusModule: {}\n")
    result = run(core, "--config", str(path))
    assert result.returncode == 1
    assert f"{path}: modules.bogusModule: unknown key" in result.stderr
    assert "Traceback" not in result.stderr
