"""The synccontroller's decisions, without I/O.

Mirrors KubeEdge's ``cloud/pkg/synccontroller/{synccontroller,objectsync,
clusterobjectsync}.go`` (protocol.md 4.4). For each (Cluster)ObjectSync record
``<node>.<uid>`` and the object it names:

* the node no longer exists: delete the record;
* the object is missing, or its UID differs from the one in the record name
  (deleted and recreated): send the node a ``delete`` carrying only apiVersion,
  kind, name, namespace and the old UID;
* the object's resourceVersion is newer than the recorded one (``"0"`` = never
  acked): send the node an ``update`` with the current object;
* otherwise nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from beehive.constants import GROUP_RESOURCE, MOD_SYNCCONTROLLER, NULL_NAMESPACE, OP_DELETE
from beehive.message import Message
from cloudcore.reliablesyncs import split_sync_object_name
from kecommon.resources import build_resource, compare_resource_versions

__all__ = [
    "DeleteRecord",
    "Nothing",
    "SendToNode",
    "SyncRecord",
    "decide",
    "parse_record",
]

OP_UPDATE: Final = "update"


@dataclass(frozen=True, slots=True)
class SyncRecord:
    """One ObjectSync (``namespace`` set) or ClusterObjectSync (``namespace`` None)."""

    name: str
    namespace: str | None
    node: str
    uid: str
    api_version: str
    kind: str
    object_name: str
    recorded_rv: str

    @property
    def object_type(self) -> str:
        """The resource type segment: the lowercased kind (``pod``, ``configmap``)."""
        return self.kind.lower()


def parse_record(obj: dict[str, Any]) -> SyncRecord | None:
    """A record from an ObjectSync/ClusterObjectSync dict; None if unusable."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    name = meta.get("name")
    if not isinstance(name, str):
        return None
    try:
        node, uid = split_sync_object_name(name)
    except ValueError:
        return None
    kind = spec.get("objectKind")
    object_name = spec.get("objectName")
    if not isinstance(kind, str) or not kind or not isinstance(object_name, str):
        return None
    status = obj.get("status") or {}
    return SyncRecord(
        name=name,
        namespace=meta.get("namespace") or None,
        node=node,
        uid=uid,
        api_version=str(spec.get("objectAPIVersion") or ""),
        kind=kind,
        object_name=object_name,
        recorded_rv=str(status.get("objectResourceVersion") or "0"),
    )


@dataclass(frozen=True, slots=True)
class DeleteRecord:
    record: SyncRecord


@dataclass(frozen=True, slots=True)
class SendToNode:
    msg: Message


@dataclass(frozen=True, slots=True)
class Nothing:
    pass


Action = DeleteRecord | SendToNode | Nothing

NOTHING: Final = Nothing()


def _resource(record: SyncRecord) -> str:
    return build_resource(
        record.node, record.namespace or NULL_NAMESPACE, record.object_type, record.object_name
    )


def decide(record: SyncRecord, current: dict[str, Any] | None, *, node_exists: bool) -> Action:
    """What to do about one record given the object as the API server has it."""
    if not node_exists:
        return DeleteRecord(record)
    meta = (current or {}).get("metadata") or {}
    if current is None or meta.get("uid") != record.uid:
        gone_meta: dict[str, Any] = {"name": record.object_name, "uid": record.uid}
        if record.namespace:
            gone_meta["namespace"] = record.namespace
        msg = Message.new(
            source=MOD_SYNCCONTROLLER,
            group=GROUP_RESOURCE,
            operation=OP_DELETE,
            resource=_resource(record),
            content={"apiVersion": record.api_version, "kind": record.kind, "metadata": gone_meta},
        )
        return SendToNode(msg)
    rv = str(meta.get("resourceVersion") or "")
    if compare_resource_versions(rv, record.recorded_rv) != 1:
        return NOTHING
    content = dict(current)
    content.setdefault("apiVersion", record.api_version)
    content.setdefault("kind", record.kind)
    msg = Message.new(
        source=MOD_SYNCCONTROLLER,
        group=GROUP_RESOURCE,
        operation=OP_UPDATE,
        resource=_resource(record),
        content=content,
        resource_version=rv,
    )
    return SendToNode(msg)
