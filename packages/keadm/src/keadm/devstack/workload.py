"""The sample workload and the checks on it, shared by the demo and the e2e tests.

A pod is looked at the way a user would: its status in the API server (phase,
Ready condition, container statuses), and on the edge through the CRI (the
containers and sandbox carrying the pod's uid label, the log file the runtime
reports).
"""

from __future__ import annotations

from typing import Any

from keadm.devstack.waiting import wait_for

__all__ = [
    "BUSYBOX_IMAGE",
    "POD_UID_LABEL",
    "container_id",
    "container_status",
    "demo_configmap",
    "demo_pod",
    "is_running_and_ready",
    "pod_runtime_objects",
    "wait_runtime_objects_gone",
]

BUSYBOX_IMAGE = "docker.io/library/busybox:latest"
#: kubelet's label on every sandbox and container of a pod (edged sets it too)
POD_UID_LABEL = "io.kubernetes.pod.uid"
DEMO_MESSAGE = "Hello from a ConfigMap, delivered by kubeedge-py"
LOG_PREFIX = "demo says:"


def demo_configmap(namespace: str, name: str = "demo-config") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"message": DEMO_MESSAGE},
    }


def demo_pod(
    namespace: str, node_name: str, *, name: str = "hello", configmap: str = "demo-config"
) -> dict[str, Any]:
    """busybox printing its configmap file, then idling until SIGTERM."""
    script = (
        # PID 1 gets no default SIGTERM action: trap it so deletion is quick.
        'trap "exit 0" TERM; '
        f'echo "{LOG_PREFIX} $(cat /etc/demo/message)"; '
        "while true; do sleep 1; done"
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "kubeedge-py-demo"},
        },
        "spec": {
            # No scheduler in devkube; on a real cluster this also pins the pod.
            "nodeName": node_name,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "hello",
                    "image": BUSYBOX_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/demo", "readOnly": True}
                    ],
                }
            ],
            "volumes": [{"name": "config", "configMap": {"name": configmap}}],
        },
    }


def _condition(pod: dict[str, Any], kind: str) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def is_running_and_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and _condition(pod, "Ready") == "True"


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == name:
            return dict(cs)
    return None


def container_id(pod: dict[str, Any], name: str) -> str | None:
    """The runtime's id of container ``name`` (``containerd://<id>`` -> ``<id>``)."""
    cs = container_status(pod, name)
    if not cs or not cs.get("containerID"):
        return None
    return str(cs["containerID"]).split("://", 1)[-1]


async def pod_runtime_objects(cri: Any, uid: str) -> tuple[list[Any], list[Any]]:
    """The containers and sandboxes the runtime still has for pod ``uid``."""
    selector = {POD_UID_LABEL: uid}
    return await cri.list_containers(labels=selector), await cri.list_pod_sandbox(labels=selector)


async def wait_runtime_objects_gone(cri: Any, uid: str, *, timeout: float) -> None:
    """Wait until the runtime has no container and no sandbox of pod ``uid``."""
    seen: dict[str, str] = {}

    async def gone() -> bool:
        containers, sandboxes = await pod_runtime_objects(cri, uid)
        seen["left"] = f"{len(containers)} containers, {len(sandboxes)} sandboxes"
        return not containers and not sandboxes

    await wait_for(
        gone, what=f"the containers and sandbox of pod {uid} to be removed",
        timeout=timeout, describe=lambda: seen.get("left", ""),
    )
