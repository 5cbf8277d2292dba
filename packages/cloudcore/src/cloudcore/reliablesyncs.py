"""Names and shapes of KubeEdge's reliablesyncs records, without I/O.

``reliablesyncs.kubeedge.io/v1alpha1`` ObjectSync (namespaced) and
ClusterObjectSync (cluster-scoped); protocol.md 4.3
(``staging/src/github.com/kubeedge/api/apis/reliablesyncs/v1alpha1/type.go``,
``cloud/pkg/synccontroller/synccontroller.go`` BuildObjectSyncName/getNodeName).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "INITIAL_RESOURCE_VERSION",
    "KIND_BY_TYPE",
    "OBJECTSYNC_API_VERSION",
    "split_sync_object_name",
    "sync_object_name",
]

OBJECTSYNC_API_VERSION: Final = "reliablesyncs.kubeedge.io/v1alpha1"
#: the version a record starts with: created, never acked
INITIAL_RESOURCE_VERSION: Final = "0"

#: (apiVersion, kind) for a resource type when the content carries no TypeMeta
KIND_BY_TYPE: Final[dict[str, tuple[str, str]]] = {
    "pod": ("v1", "Pod"),
    "configmap": ("v1", "ConfigMap"),
    "secret": ("v1", "Secret"),
    "node": ("v1", "Node"),
    "service": ("v1", "Service"),
    "endpoints": ("v1", "Endpoints"),
    "device": ("devices.kubeedge.io/v1beta1", "Device"),
    "devicemodel": ("devices.kubeedge.io/v1beta1", "DeviceModel"),
}


def sync_object_name(node: str, uid: str) -> str:
    """``<node>.<uid>`` (BuildObjectSyncName)."""
    return f"{node}.{uid}"


def split_sync_object_name(name: str) -> tuple[str, str]:
    """(node, uid): the node is everything before the last ``.`` (getNodeName).

    Raises:
        ValueError: the name is not ``<node>.<uid>``.
    """
    node, sep, uid = name.rpartition(".")
    if not sep or not node or not uid:
        raise ValueError(f"{name!r} is not <node>.<uid>")
    return node, uid
