"""PodRuntime on the private containerd: pods really run.

These drive the runtime layer directly, on the real edge data path below the
WebSocket: MetaClient -> metamanager (SQLite) -> a cloud stand-in that answers
as cloudcore does (edged/helpers.py).
"""

from __future__ import annotations

import asyncio
import base64
import socket
from pathlib import Path
from typing import Any

import pytest

from edgecore.edged import labels as L
from edgecore.edged.cri import CRIClient, pb
from edgecore.edged.devcontainerd import DevContainerd, DevContainerdSettings
from edgecore.edged.errors import CRIError
from edgecore.edged.runtime import PodRuntime
from edged.helpers import (
    EdgeStack,
    container_status,
    find_condition,
    make_pod,
    make_settings,
    teardown_runtime,
    wait_for,
)

pytestmark = pytest.mark.containerd

IMAGE = "docker.io/library/busybox:latest"


def _ready(rt: PodRuntime, uid: str) -> dict[str, Any] | None:
    st = rt.pod_status(uid)
    if st and st["phase"] == "Running" and find_condition(st, "Ready")["status"] == "True":
        return st
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _owned(cri: CRIClient, rt: PodRuntime, uid: str) -> tuple[list[Any], list[Any]]:
    sel = {**L.owned(rt.settings.node_name), L.POD_UID: uid}
    return await cri.list_pod_sandbox(sel), await cri.list_containers(sel)


async def test_pod_with_configmap_secret_and_liveness_runs_ready(
    runtime: PodRuntime, stack: EdgeStack, cri: CRIClient
) -> None:
    configmap = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "cap-cm", "namespace": "default", "uid": "cm-uid"},
        "data": {"greeting": "hello from a configmap"},
    }
    await stack.put("configmap", configmap)
    await stack.put(
        "secret",
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "cap-secret", "namespace": "default", "uid": "secret-uid"},
            "data": {"token": base64.b64encode(b"example-only").decode()},
        },
    )
    pod = make_pod(
        "cap-pod",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c"],
                "args": [
                    "cat /cfg/greeting; echo; echo TOKEN=$TOKEN POD=$(POD_NAME); "
                    "cat /var/run/secrets/kubernetes.io/serviceaccount/token; echo; "
                    "exec sleep 3600"
                ],
                "env": [
                    {
                        "name": "TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "cap-secret", "key": "token"}},
                    },
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/cfg"},
                    {
                        "name": "kube-api-access",
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        "readOnly": True,
                    },
                ],
                "livenessProbe": {
                    "exec": {"command": ["cat", "/cfg/greeting"]},
                    "periodSeconds": 1,
                },
                "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
            }
        ],
        volumes=[
            {"name": "cfg", "configMap": {"name": "cap-cm", "defaultMode": 420}},
            {
                "name": "kube-api-access",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {"fieldPath": "metadata.namespace"},
                                    }
                                ]
                            }
                        },
                    ]
                },
            },
        ],
        serviceAccountName="default",
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    st = await wait_for(lambda: _ready(runtime, uid), what="pod Running and Ready")

    cs = container_status(st, "c")
    assert cs["ready"] is True and cs["started"] is True and cs["restartCount"] == 0
    assert cs["containerID"].startswith("containerd://")
    assert cs["imageID"].startswith("sha256:")
    assert cs["state"]["running"]["startedAt"].endswith("Z")
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    assert st["podIP"] and st["podIP"] != "127.0.0.1"  # CNI bridge address
    assert st["hostIP"] == "127.0.0.1" and st["startTime"].endswith("Z")

    # The status went upstream as kubelet-shaped strategic merge patches.
    patches = stack.cloud.pod_patches("cap-pod")
    assert patches and all(p["metadata"] == {"uid": uid} for p in patches)
    last_conditions = [p for p in patches if "conditions" in p["status"]][-1]["status"]
    assert [c["type"] for c in last_conditions["$setElementOrder/conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert any(p["status"].get("phase") == "Running" for p in patches)
    token_requests = [
        m.content for m in stack.cloud.requests if "/serviceaccounttoken/" in m.resource
    ]
    assert token_requests[0]["spec"]["boundObjectRef"]["uid"] == uid

    # The log line is in the CRI log file, in the CRI log format.
    cid = cs["containerID"].split("://")[1]
    log_path = Path((await cri.container_status(cid)).log_path)

    def logged() -> str | None:
        text = log_path.read_text() if log_path.exists() else ""
        return text if "TOKEN=example-only POD=cap-pod" in text else None

    text = await wait_for(logged, what="log line")
    assert " stdout F hello from a configmap" in text
    assert "token-for-default-default" in text

    # An updated configmap reaches the running container without a restart.
    configmap["data"]["greeting"] = "changed"
    await stack.put("configmap", configmap, operation="update")
    runtime.config_changed("configmap", "default", "cap-cm")

    async def seen_in_container() -> bool:
        code, out = await cri.exec_sync(cid, ["cat", "/cfg/greeting"], 5)
        return code == 0 and out == b"changed"

    await wait_for(seen_in_container, what="configmap update inside the container")
    assert container_status(runtime.pod_status(uid) or {}, "c")["containerID"] == cs["containerID"]


class _GatedMeta:
    """The runtime's metadata source, able to hold a configmap read open: the
    read returns what the store held when it started, after ``release``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        obj = await self.inner.get_configmap(namespace, name)
        if self.armed:
            self.armed = False
            self.entered.set()
            await self.release.wait()
        return obj


async def test_configmap_update_during_a_volume_refresh_is_not_lost(
    runtime: PodRuntime, stack: EdgeStack, cri: CRIClient
) -> None:
    """A second update that lands while the first is being written to the pod's
    volume gets its own refresh (it once cleared the "refresh needed" flag)."""
    configmap = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "race-cm", "namespace": "default", "uid": "race-cm-uid"},
        "data": {"value": "v0"},
    }
    await stack.put("configmap", configmap)
    pod = make_pod(
        "race-pod",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "exec sleep 3600"],
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
            }
        ],
        volumes=[{"name": "cfg", "configMap": {"name": "race-cm"}}],
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    st = await wait_for(lambda: _ready(runtime, uid), what="pod running", timeout=60)
    cid = container_status(st, "c")["containerID"].split("://")[1]

    async def file_reads(want: bytes) -> bool:
        code, out = await cri.exec_sync(cid, ["cat", "/cfg/value"], 5)
        return code == 0 and out == want

    gate = _GatedMeta(runtime.meta)
    runtime.meta = gate  # type: ignore[assignment]
    gate.armed = True
    configmap["data"]["value"] = "v1"
    await stack.put("configmap", configmap, operation="update")
    runtime.config_changed("configmap", "default", "race-cm")
    await asyncio.wait_for(gate.entered.wait(), 30)  # the refresh read v1 and is held

    configmap["data"]["value"] = "v2"
    await stack.put("configmap", configmap, operation="update")
    runtime.config_changed("configmap", "default", "race-cm")
    gate.release.set()

    await wait_for(lambda: file_reads(b"v2"), what="the second update inside the container")


async def test_crashing_container_restarts_with_backoff(
    runtime: PodRuntime, stack: EdgeStack
) -> None:
    pod = make_pod(
        "crasher",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "echo crashing; exit 3"],
            }
        ],
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)

    def restarted_twice() -> dict[str, Any] | None:
        st = runtime.pod_status(uid)
        if st and container_status(st, "c")["restartCount"] >= 2:
            return st
        return None

    st = await wait_for(restarted_twice, timeout=40, what="two restarts")
    cs = container_status(st, "c")
    assert st["phase"] == "Running"  # restartPolicy Always keeps it Running
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    sent = [p["status"] for p in stack.cloud.pod_patches("crasher")]
    reasons = {
        (s.get("state") or {}).get("waiting", {}).get("reason")
        for st_ in sent
        for s in st_.get("containerStatuses") or []
    }
    assert "CrashLoopBackOff" in reasons
    backoff_msgs = [
        s["state"]["waiting"]["message"]
        for st_ in sent
        for s in st_.get("containerStatuses") or []
        if (s.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
    ]
    assert any(m.startswith("back-off 1s restarting failed container=c") for m in backoff_msgs)
    assert any("back-off 2s" in m for m in backoff_msgs) or cs["restartCount"] >= 2


async def test_never_restart_policy_succeeds(runtime: PodRuntime) -> None:
    pod = make_pod(
        "oneshot",
        [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never", "command": ["true"]}],
        restartPolicy="Never",
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    st = await wait_for(
        lambda: (s := runtime.pod_status(uid)) and s["phase"] == "Succeeded" and s,
        what="Succeeded",
    )
    cs = container_status(st, "c")
    assert cs["state"]["terminated"]["exitCode"] == 0
    assert cs["state"]["terminated"]["reason"] == "Completed"
    assert cs["restartCount"] == 0
    assert find_condition(st, "Ready")["reason"] == "PodCompleted"


async def test_liveness_failure_restarts_container(runtime: PodRuntime) -> None:
    pod = make_pod(
        "unhealthy",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "touch /tmp/ok; sleep 1; rm /tmp/ok; exec sleep 3600"],
                "livenessProbe": {
                    "exec": {"command": ["cat", "/tmp/ok"]},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                },
            }
        ],
        terminationGracePeriodSeconds=0,
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    st = await wait_for(
        lambda: (
            (s := runtime.pod_status(uid)) and container_status(s, "c")["restartCount"] >= 1 and s
        ),
        timeout=30,
        what="restart after liveness failure",
    )
    assert container_status(st, "c")["lastState"]["terminated"]["exitCode"] == 137


async def test_host_network_pod_with_http_readiness(runtime: PodRuntime) -> None:
    port = _free_port()
    pod = make_pod(
        "web",
        [
            {
                "name": "httpd",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/etc"],
                "ports": [{"name": "http", "containerPort": port}],
                "readinessProbe": {
                    "httpGet": {"path": "/hosts", "port": "http"},
                    "periodSeconds": 1,
                },
                "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
                "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}},
            }
        ],
        hostNetwork=True,
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    st = await wait_for(lambda: _ready(runtime, uid), what="httpd Ready")
    assert st["podIP"] == "127.0.0.1"


async def test_graceful_deletion_removes_containers_and_sandbox(
    runtime: PodRuntime, stack: EdgeStack, cri: CRIClient
) -> None:
    pod = make_pod(
        "doomed",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": [
                    "sh",
                    "-c",
                    "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
                ],
            }
        ],
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    await wait_for(lambda: _ready(runtime, uid), what="Ready")
    pod_dir = runtime.settings.pods_dir / uid

    # The cloud marks the pod for deletion: edged stops it and asks for the delete.
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    pod["metadata"]["deletionGracePeriodSeconds"] = 5
    runtime.upsert_pod(pod)
    await wait_for(stack.cloud.deleted_pods, what="delete_pod")
    assert stack.cloud.deleted_pods() == [
        ("default/pod/doomed", {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})
    ]
    st = runtime.pod_status(uid) or {}
    term = container_status(st, "c")["state"]["terminated"]
    assert term["exitCode"] == 0  # it handled SIGTERM within the grace period

    # The cloud's delete follows: everything of the pod goes.
    runtime.remove_pod(pod)

    async def gone() -> bool:
        sandboxes, containers = await _owned(cri, runtime, uid)
        return not sandboxes and not containers

    await wait_for(gone, what="containers and sandbox removed")
    assert not pod_dir.exists()

    # A late copy of the terminating pod (a resend that crossed the delete) is stale:
    # it neither brings the pod back nor sends the API a second delete.
    runtime.upsert_pod(pod)
    assert uid not in runtime.pods
    await wait_for(lambda: not runtime.workers.busy(uid), what="worker idle")
    assert len(stack.cloud.deleted_pods()) == 1


async def test_restarted_runtime_adopts_running_containers(
    containerd: DevContainerd, cri: CRIClient, stack: EdgeStack, tmp_path: Path
) -> None:
    settings = make_settings(containerd, tmp_path / "kubelet")
    pod = make_pod(
        "survivor",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "exec sleep 3600"],
            }
        ],
    )
    uid = pod["metadata"]["uid"]
    await stack.put("pod", pod)  # the cloud sent it; metamanager's SQLite has it
    first = PodRuntime(cri, stack.meta, settings)
    await first.start()
    st = await wait_for(lambda: _ready(first, uid), what="Ready")
    cid = container_status(st, "c")["containerID"]
    await first.close()  # edged stops; its containers keep running

    await stack.cloud.set_connected(False)  # and the cloud is unreachable
    second = PodRuntime(cri, stack.meta, settings)
    await second.start()
    try:
        st2 = await wait_for(lambda: _ready(second, uid), what="adopted pod Ready")
        assert container_status(st2, "c")["containerID"] == cid
        assert container_status(st2, "c")["restartCount"] == 0
        await second.relist()
        await second.workers.wait_idle()
        _, containers = await _owned(cri, second, uid)
        assert [c.id for c in containers] == [cid.split("://")[1]]
        assert containers[0].state == pb.CONTAINER_RUNNING
    finally:
        await teardown_runtime(second)


async def test_containers_of_unknown_pods_are_collected(
    containerd: DevContainerd, cri: CRIClient, stack: EdgeStack, tmp_path: Path
) -> None:
    settings = make_settings(containerd, tmp_path / "kubelet")
    pod = make_pod(
        "orphan",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "exec sleep 3600"],
            }
        ],
        terminationGracePeriodSeconds=0,
    )
    uid = pod["metadata"]["uid"]
    first = PodRuntime(cri, stack.meta, settings)
    await first.start(load_from_store=False)
    await wait_for(
        lambda: _ready(first, uid) if first.pods else first.upsert_pod(pod), what="Ready"
    )
    await first.close()

    # The store no longer has the pod (it was deleted while edged was down).
    second = PodRuntime(cri, stack.meta, settings)
    await second.start()
    try:

        async def gone() -> bool:
            sandboxes, containers = await _owned(cri, second, uid)
            return not sandboxes and not containers

        await wait_for(gone, what="orphan collected")
    finally:
        await teardown_runtime(second)


async def test_missing_secret_waits_then_starts_when_it_arrives(
    runtime: PodRuntime, stack: EdgeStack
) -> None:
    pod = make_pod(
        "needs-secret",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "echo $PASSWORD; exec sleep 3600"],
                "env": [
                    {
                        "name": "PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "late", "key": "password"}},
                    }
                ],
            },
            {
                "name": "ghost",
                "image": "kubeedge-py.local/does-not-exist:1",
                "imagePullPolicy": "Never",
            },
        ],
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)

    def waiting(name: str, reason: str) -> dict[str, Any] | None:
        st = runtime.pod_status(uid)
        if not st:
            return None
        state = container_status(st, name)["state"]
        return st if state.get("waiting", {}).get("reason") == reason else None

    st = await wait_for(lambda: waiting("c", "CreateContainerConfigError"), what="config error")
    assert "late" in container_status(st, "c")["state"]["waiting"]["message"]
    st = await wait_for(lambda: waiting("ghost", "ErrImageNeverPull"), what="never pull")
    assert st["phase"] == "Pending"
    assert find_condition(st, "Ready")["status"] == "False"

    await stack.put(
        "secret",
        {
            "kind": "Secret",
            "metadata": {"name": "late", "namespace": "default"},
            "data": {"password": base64.b64encode(b"s3cret").decode()},
        },
    )
    runtime.config_changed("secret", "default", "late")
    st = await wait_for(
        lambda: (
            (s := runtime.pod_status(uid)) and "running" in container_status(s, "c")["state"] and s
        ),
        what="container started once the secret arrived",
    )
    assert "waiting" in container_status(st, "ghost")["state"]


async def test_shared_volumes_env_from_and_limits(
    runtime: PodRuntime, stack: EdgeStack, cri: CRIClient, tmp_path: Path
) -> None:
    await stack.put(
        "configmap",
        {
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default"},
            "data": {"MODE": "edge", "LEVEL": "3"},
        },
    )
    host_dir = tmp_path / "host-data"
    pod = make_pod(
        "sharing",
        [
            {
                "name": "writer",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": [
                    "sh",
                    "-c",
                    "echo $CFG_MODE-$CFG_LEVEL > /shared/msg; "
                    "echo host > /host/file; exec sleep 3600",
                ],
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                "volumeMounts": [
                    {"name": "shared", "mountPath": "/shared"},
                    {"name": "host", "mountPath": "/host"},
                ],
                "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
            },
            {
                "name": "reader",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "exec sleep 3600"],
                "volumeMounts": [{"name": "shared", "mountPath": "/data", "readOnly": True}],
            },
        ],
        volumes=[
            {"name": "shared", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"}},
        ],
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    st = await wait_for(lambda: _ready(runtime, uid), what="both containers Ready")
    reader = container_status(st, "reader")["containerID"].split("://")[1]
    writer = container_status(st, "writer")["containerID"].split("://")[1]

    async def shared() -> bool:
        code, out = await cri.exec_sync(reader, ["cat", "/data/msg"], 5)
        return code == 0 and out.strip() == b"edge-3"

    await wait_for(shared, what="emptyDir shared between containers")
    await wait_for(lambda: (host_dir / "file").exists(), what="hostPath written")
    code, _ = await cri.exec_sync(reader, ["touch", "/data/x"], 5)
    assert code != 0  # readOnly mount
    code, out = await cri.exec_sync(
        writer, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], 5
    )
    if code != 0:  # cgroup v2 layout
        code, out = await cri.exec_sync(writer, ["cat", "/sys/fs/cgroup/memory.max"], 5)
    assert code == 0 and int(out.strip()) == 64 * 2**20


async def test_startup_probe_gates_readiness(runtime: PodRuntime) -> None:
    pod = make_pod(
        "slow-start",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "sleep 2; touch /tmp/started; exec sleep 3600"],
                "startupProbe": {
                    "exec": {"command": ["cat", "/tmp/started"]},
                    "periodSeconds": 1,
                    "failureThreshold": 30,
                },
                "livenessProbe": {
                    "exec": {"command": ["cat", "/tmp/started"]},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                },
            }
        ],
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    st = await wait_for(
        lambda: (s := runtime.pod_status(uid)) and s["phase"] == "Running" and s,
        what="Running",
    )
    # Running but not ready while the startup probe has not passed (the liveness
    # probe, which would fail now, is not run yet either).
    assert container_status(st, "c")["ready"] is False
    assert container_status(st, "c")["started"] is False
    st = await wait_for(lambda: _ready(runtime, uid), what="Ready after startup")
    assert container_status(st, "c")["started"] is True
    assert container_status(st, "c")["restartCount"] == 0


async def test_image_pull_failure_is_reported_and_backed_off(
    runtime: PodRuntime, stack: EdgeStack
) -> None:
    # ".invalid" never resolves (RFC 6761): the pull fails at once, with or without network.
    image = "kubeedge-py.invalid/busybox:1.0"
    pod = make_pod(
        "unpullable",
        [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent"}],
    )
    runtime.upsert_pod(pod)

    def reasons() -> list[str]:
        out = []
        for p in stack.cloud.pod_patches("unpullable"):
            for cs in p["status"].get("containerStatuses") or []:
                out.append((cs["state"].get("waiting") or {}).get("reason", ""))
        return out

    # ErrImagePull, then ImagePullBackOff while waiting, then a new attempt (ErrImagePull).
    await wait_for(
        lambda: (
            reasons()[-3:] == ["ErrImagePull", "ImagePullBackOff", "ErrImagePull"]
            or reasons().count("ErrImagePull") >= 2
        ),
        timeout=30,
        what="pull retried after its back-off",
    )
    assert "ImagePullBackOff" in reasons()
    pulls = [p for p in stack.cloud.pod_patches("unpullable") if "phase" in p["status"]]
    assert all(p["status"]["phase"] == "Pending" for p in pulls)


async def test_host_port_reaches_the_pod(tmp_path: Path, stack: EdgeStack) -> None:
    # A containerd of its own, with the CNI portmap plugin (opt-in: it needs iptables).
    from edgecore.edged.devcontainerd import _portmap_chains_exist

    chains_before = _portmap_chains_exist()
    ctrd = DevContainerd(
        tmp_path / "ctrd", settings=DevContainerdSettings(host_ports=True, subnet="10.87.1.0/24")
    )
    await ctrd.start()
    client = CRIClient(ctrd.endpoint)
    rt = PodRuntime(client, stack.meta, make_settings(ctrd, tmp_path / "kubelet"))
    try:
        await ctrd.import_local_images()
        await rt.start()
        port = _free_port()
        pod = make_pod(
            "published",
            [
                {
                    "name": "web",
                    "image": IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"],
                    "ports": [{"containerPort": 8080, "hostPort": port}],
                }
            ],
        )
        uid = pod["metadata"]["uid"]
        rt.upsert_pod(pod)
        st = await wait_for(lambda: _ready(rt, uid), what="Ready")
        assert st["podIP"].startswith("10.87.1.")

        async def answered() -> bytes | None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return None
            writer.write(b"GET /hosts HTTP/1.0\r\n\r\n")
            await writer.drain()
            line = await reader.readline()
            writer.close()
            return line or None

        line = await wait_for(answered, what="hostPort answered")
        assert line.startswith(b"HTTP/1.") and b" 200 " in line
    finally:
        await teardown_runtime(rt)
        await client.close()
        await ctrd.stop()
    assert _portmap_chains_exist() == chains_before  # nothing left behind


async def test_dead_sandbox_is_replaced_and_restarts_count(
    runtime: PodRuntime, cri: CRIClient
) -> None:
    pod = make_pod(
        "phoenix",
        [
            {
                "name": "c",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "exec sleep 3600"],
            }
        ],
    )
    uid = pod["metadata"]["uid"]
    runtime.upsert_pod(pod)
    st = await wait_for(lambda: _ready(runtime, uid), what="Ready")
    first_ip = st["podIP"]
    (sandbox,) = await cri.list_pod_sandbox({L.POD_UID: uid})
    await cri.stop_pod_sandbox(sandbox.id)  # the sandbox dies under edged's feet

    def replaced() -> dict[str, Any] | None:
        s = runtime.pod_status(uid)
        if s and _ready(runtime, uid) and container_status(s, "c")["restartCount"] == 1:
            return s
        return None

    st = await wait_for(replaced, what="new sandbox and container")
    sandboxes = await cri.list_pod_sandbox({L.POD_UID: uid})
    assert [s.metadata.attempt for s in sandboxes] == [1]
    assert st["podIP"] and first_ip


async def test_containerd_restart_keeps_pods_and_container_ids(
    tmp_path: Path, stack: EdgeStack
) -> None:
    ctrd = DevContainerd(tmp_path / "ctrd", settings=DevContainerdSettings(subnet="10.86.1.0/24"))
    await ctrd.start()
    client = CRIClient(ctrd.endpoint)
    rt = PodRuntime(client, stack.meta, make_settings(ctrd, tmp_path / "kubelet"))
    try:
        await ctrd.import_local_images()
        await rt.start()
        pod = make_pod(
            "steady",
            [
                {
                    "name": "c",
                    "image": IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "exec sleep 3600"],
                }
            ],
        )
        uid = pod["metadata"]["uid"]
        rt.upsert_pod(pod)
        st = await wait_for(lambda: _ready(rt, uid), what="Ready")
        cid = container_status(st, "c")["containerID"]

        await ctrd.stop(remove_pods=False)  # the daemon goes away, the shims stay
        with pytest.raises(CRIError):
            await rt.relist()  # edged sees the runtime gone ...
        await ctrd.start()
        rt.workers.poke(uid)  # ... and syncs against it again once it is back
        await rt.workers.wait_idle()
        st = await wait_for(lambda: _ready(rt, uid), what="Ready after the restart")
        assert container_status(st, "c")["containerID"] == cid
        assert container_status(st, "c")["restartCount"] == 0
        (container,) = await client.list_containers({L.POD_UID: uid})
        assert f"containerd://{container.id}" == cid
        assert container.state == pb.CONTAINER_RUNNING
        code, _ = await client.exec_sync(container.id, ["true"], 5)
        assert code == 0
    finally:
        await teardown_runtime(rt)
        await client.close()
        await ctrd.stop()
