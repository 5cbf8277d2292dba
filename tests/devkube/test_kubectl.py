"""kubectl (the v1.32 client) against the ``kube_api`` fixture: get, create -f,
apply -f (with and without --validate=false), delete, get -w and -o yaml."""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from fixtures.apiserver import KubeApi, KubeApiError

KUBECTL = shutil.which("kubectl")
TIMEOUT = 60


class Kubectl:
    def __init__(self, kube_api: KubeApi, home: Path, namespace: str) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kube_api.kubeconfig), "HOME": str(home)}
        self.namespace = namespace

    def args(self, *args: str) -> list[str]:
        # scripts/setup installs kubectl: its absence is a failure, not a skip.
        assert KUBECTL is not None, "kubectl is not installed: run scripts/setup"
        return [KUBECTL, "--namespace", self.namespace, *args]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.args(*args), env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc


@pytest.fixture
def kubectl(kube_api: KubeApi, tmp_path: Path) -> Kubectl:
    ns = asyncio.run(kube_api.make_namespace("kctl"))
    return Kubectl(kube_api, tmp_path / "home", ns)


def write(tmp_path: Path, name: str, doc: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def cm(name: str, **data: str) -> dict:  # type: ignore[type-arg]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_get_namespaces_and_resources(kubectl: Kubectl) -> None:
    out = kubectl("get", "namespaces").stdout
    assert kubectl.namespace in out and "NAME" in out
    out = kubectl("api-resources").stdout
    assert "configmaps" in out and "leases" in out


def test_create_get_yaml_delete(kubectl: Kubectl, tmp_path: Path) -> None:
    # devkube serves a minimal /openapi/v3, so kubectl validates on the server: no flag needed.
    out = kubectl("create", "-f", str(write(tmp_path, "a.yaml", cm("a", k="v")))).stdout
    assert out.strip() == "configmap/a created"
    got = yaml.safe_load(kubectl("get", "configmap", "a", "-o", "yaml").stdout)
    assert got["data"] == {"k": "v"} and got["metadata"]["namespace"] == kubectl.namespace
    assert got["metadata"]["uid"]
    again = kubectl("create", "-f", str(tmp_path / "a.yaml"), check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr
    assert "a" in kubectl("get", "cm").stdout
    assert kubectl("delete", "configmap", "a").stdout.strip() == 'configmap "a" deleted'
    gone = kubectl("get", "configmap", "a", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_apply_creates_then_configures(kubectl: Kubectl, tmp_path: Path) -> None:
    path = write(tmp_path, "b.yaml", cm("b", one="1"))
    out = kubectl("apply", "-f", str(path), "--validate=false").stdout
    assert out.strip() == "configmap/b created"
    write(tmp_path, "b.yaml", cm("b", two="2"))
    out = kubectl("apply", "-f", str(path), "--validate=false").stdout
    assert out.strip() == "configmap/b configured"
    got = yaml.safe_load(kubectl("get", "configmap", "b", "-o", "yaml").stdout)
    # apply's three-way merge removed the key the previous apply set.
    assert got["data"] == {"two": "2"}
    out = kubectl("apply", "-f", str(path)).stdout
    assert out.strip() == "configmap/b unchanged"


def test_apply_deployment_strategic_merge(kubectl: Kubectl, tmp_path: Path) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{
                                     "name": "c", "image": "busybox:1.36",
                                     "env": [{"name": "FOO", "value": "1"}]}]}}}}
    path = write(tmp_path, "d.yaml", dep)
    kubectl("apply", "-f", str(path), "--validate=false")
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "BAR", "value": "2"}]
    write(tmp_path, "d.yaml", dep)
    kubectl("apply", "-f", str(path), "--validate=false")
    got = yaml.safe_load(kubectl("get", "deployment", "web", "-o", "yaml").stdout)
    container = got["spec"]["template"]["spec"]["containers"][0]
    # apply's strategic merge patch replaced the env entry (merge key: name)...
    assert container["env"] == [{"name": "BAR", "value": "2"}]
    # ...and kept the server-side defaults it never mentioned.
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert got["metadata"]["generation"] == 2


def test_typed_generators(kubectl: Kubectl, kube_api: KubeApi) -> None:
    # These send protobuf bodies; devkube reads them for these kinds.
    ns = f"{kubectl.namespace}-gen"
    kube_api.adopt_namespace(ns)
    assert kubectl("create", "namespace", ns).stdout.strip() == f"namespace/{ns} created"
    kubectl("create", "configmap", "cfg", "--from-literal=a=b")
    kubectl("create", "secret", "generic", "sec", "--from-literal=k=v")
    kubectl("create", "serviceaccount", "robot")
    token = kubectl("create", "token", "robot", "--duration=1h").stdout.strip()
    assert token.count(".") == 2
    got = yaml.safe_load(kubectl("get", "configmap", "cfg", "-o", "yaml").stdout)
    assert got["data"] == {"a": "b"}
    got = yaml.safe_load(kubectl("get", "secret", "sec", "-o", "yaml").stdout)
    assert got["data"] == {"k": "dg=="} and got["type"] == "Opaque"


def test_get_prints_server_side_columns(kubectl: Kubectl, tmp_path: Path) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"nodeName": "edge-1",
                    "containers": [{"name": "c", "image": "busybox:1.36"}]}}
    kubectl("create", "-f", str(write(tmp_path, "p.yaml", pod)))
    lines = kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                "NOMINATED", "NODE", "READINESS", "GATES"]
    cells = lines[1].split()
    assert cells[:4] == ["p", "0/1", "Pending", "0"]
    assert cells[5:] == ["<none>", "edge-1", "<none>", "<none>"]


def test_get_nodes_prints_kubes_node_columns(kubectl: Kubectl, kube_api: KubeApi) -> None:
    """kubectl get nodes asks for a Table; the answer has kube-apiserver's node columns."""
    node = asyncio.run(kube_api.make_node("tbl", labels={"node-role.kubernetes.io/edge": ""}))
    status = {"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "EdgeReady"}],
        "nodeInfo": {"kubeletVersion": "v1.31.0-kubeedge-v1.23.0"},
    }}
    kube_api.request_sync("PATCH", f"/api/v1/nodes/{node}/status", status,
                          content_type="application/merge-patch+json")
    lines = kubectl("get", "nodes", node).stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    cells = lines[1].split()
    assert cells[:3] == [node, "Ready", "edge"]
    assert cells[4] == "v1.31.0-kubeedge-v1.23.0"


def test_get_of_a_kind_without_columns_prints_name_and_age(
    kubectl: Kubectl, kube_api: KubeApi, tmp_path: Path
) -> None:
    """A CRD without additionalPrinterColumns: NAME and AGE, as kube-apiserver prints."""
    group = f"t{os.getpid()}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True}}}]},
    }
    kube_api.request_sync("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    try:
        gadget = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g1"}}
        path = f"/apis/{group}/v1/namespaces/{kubectl.namespace}/gadgets"
        deadline = time.monotonic() + TIMEOUT
        while True:  # a real API server serves a new CRD after a moment
            try:
                kube_api.request_sync("POST", path, gadget)
                break
            except KubeApiError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        lines = kubectl("get", f"gadgets.{group}").stdout.splitlines()
        assert lines[0].split() == ["NAME", "AGE"]
        assert lines[1].split()[0] == "g1"
    finally:
        kube_api.request_sync(
            "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.{group}")


def test_get_watch(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("create", "-f", str(write(tmp_path, "w0.yaml", cm("w0"))))
    proc = subprocess.Popen(
        kubectl.args("get", "configmaps", "-w", "--request-timeout=30s", "-o", "name"),
        env=kubectl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())

    threading.Thread(target=pump, daemon=True).start()

    def expect(want: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"kubectl get -w never printed {want!r}"
            try:
                if lines.get(timeout=remaining) == want:
                    return
            except queue.Empty:
                continue

    try:
        expect("configmap/w0")  # the initial list
        kubectl("create", "-f", str(write(tmp_path, "w1.yaml", cm("w1"))))
        expect("configmap/w1")
    finally:
        proc.kill()
        proc.wait(TIMEOUT)
