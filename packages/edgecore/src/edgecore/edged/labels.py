"""Labels and annotations edged puts on CRI sandboxes and containers.

The ``io.kubernetes.*`` keys are kubelet's (``pkg/kubelet/types/labels.go``,
``kuberuntime/labels.go``), so ``crictl`` shows our pods like kubelet's. The
``kubeedge-py.io/*`` keys mark what edged owns: garbage collection only ever
touches objects that carry ``MANAGED`` and this node's ``NODE`` label, so a
second edged (or kubelet) on the same containerd is left alone.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_HASH = "io.kubernetes.container.hash"
RESTART_COUNT = "io.kubernetes.container.restartCount"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
MANAGED = "kubeedge-py.io/managed-by"
MANAGED_VALUE = "edged"
NODE = "kubeedge-py.io/node"


def owned(node_name: str) -> dict[str, str]:
    """The label selector of everything this edged owns."""
    return {MANAGED: MANAGED_VALUE, NODE: node_name}


def pod_labels(pod: dict[str, Any], node_name: str) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    labels.update(
        {
            POD_NAME: meta.get("name", ""),
            POD_NAMESPACE: meta.get("namespace", ""),
            POD_UID: meta.get("uid", ""),
            **owned(node_name),
        }
    )
    return labels


def container_hash(container: dict[str, Any]) -> str:
    """A stable hash of a container spec: a changed spec means a new container."""
    return hashlib.sha256(json.dumps(container, sort_keys=True).encode()).hexdigest()[:16]
