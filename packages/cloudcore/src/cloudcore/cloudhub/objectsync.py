"""Recording what each edge node has acknowledged: ObjectSync / ClusterObjectSync.

Mirrors KubeEdge's ``saveSuccessPoint`` and the ObjectSync check of
``enqueueAckMessage`` (``cloud/pkg/cloudhub/dispatcher/message_dispatcher.go``;
protocol.md 4.2, 4.3):

* on the ack of a group ``resource`` message, get-or-create the ObjectSync
  ``<node>.<uid>`` in the object's namespace (ClusterObjectSync when the
  namespace is ``null``) with spec {objectAPIVersion, objectKind, objectName}
  and set ``status.objectResourceVersion`` (status subresource) to the acked
  resourceVersion; on the ack of a ``delete``, delete the record;
* before queueing an ack-required message for an object with nothing pending,
  look the record up; if there is none, create it with version ``"0"`` so the
  synccontroller delivers the object later even if this message is lost (the
  node is offline, cloudcore restarts).

A small cache of recorded versions avoids a GET per message. It is only ever a
lower bound of what is in the API server (this process is the only writer of
versions), which is all the "already delivered" check needs. It holds at most
``cache_limit`` records, policy **drop the least recently used** (a miss costs
one GET): records of objects or nodes that went away without an acked delete
would otherwise stay for the life of the process.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from typing import Any

import kubeclient
from beehive.constants import GROUP_RESOURCE, NULL_NAMESPACE, OP_DELETE
from beehive.message import Message
from cloudcore.cloudhub.delivery import ack_key, content_object
from cloudcore.reliablesyncs import (
    INITIAL_RESOURCE_VERSION,
    KIND_BY_TYPE,
    OBJECTSYNC_API_VERSION,
    sync_object_name,
)
from kecommon.resources import ResourceError, parse_node_resource
from kubeclient.resources import CLUSTEROBJECTSYNCS, OBJECTSYNCS

__all__ = ["ObjectSyncRecorder"]

log = logging.getLogger(__name__)


class ObjectSyncRecorder:
    """Reads and writes the (Cluster)ObjectSync records through kubeclient."""

    def __init__(self, client: kubeclient.KubeClient, *, cache_limit: int = 100_000) -> None:
        if cache_limit <= 0:
            raise ValueError("cache_limit must be positive")
        self._client = client
        self._cache_limit = cache_limit
        # (namespace, sync name) -> last recorded resourceVersion, least recent first
        self._cache: OrderedDict[tuple[str, str], str] = OrderedDict()

    def cached_records(self) -> int:
        """How many recorded versions are cached."""
        return len(self._cache)

    def _remember(self, key: tuple[str, str], version: str) -> None:
        self._cache[key] = version
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_limit:
            self._cache.popitem(last=False)

    @staticmethod
    def _target(node: str, msg: Message) -> tuple[str, str, str, str] | None:
        """(namespace, sync name, object name, object type), or None if the
        message is not one we record (not group resource, no UID)."""
        if msg.group != GROUP_RESOURCE:
            return None
        uid = ack_key(msg)
        if uid is None:
            return None
        try:
            _, path = parse_node_resource(msg.resource)
        except ResourceError:
            return None
        obj = content_object(msg) or {}
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        name = (meta or {}).get("name") or path.name
        return path.namespace, sync_object_name(node, uid), str(name), path.type

    def _ref(self, namespace: str) -> kubeclient.resources.ResourceRef:
        return CLUSTEROBJECTSYNCS if namespace == NULL_NAMESPACE else OBJECTSYNCS

    @staticmethod
    def _ns(namespace: str) -> str | None:
        return None if namespace == NULL_NAMESPACE else namespace

    async def recorded_version(self, node: str, msg: Message) -> str | None:
        """The version recorded for ``msg``'s object; creates the record with
        ``"0"`` if there is none. None if the message is not recordable."""
        target = self._target(node, msg)
        if target is None:
            return None
        namespace, sync_name, obj_name, rtype = target
        cached = self._cache.get((namespace, sync_name))
        if cached is not None:
            self._cache.move_to_end((namespace, sync_name))
            return cached
        ref, ns = self._ref(namespace), self._ns(namespace)
        try:
            current = await self._client.get(ref, sync_name, namespace=ns)
        except kubeclient.NotFound:
            body = self._body(namespace, sync_name, obj_name, rtype, msg)
            try:
                await self._client.create(ref, body, namespace=ns)
            except kubeclient.AlreadyExists:
                return None  # created concurrently; let this message through
            self._remember((namespace, sync_name), INITIAL_RESOURCE_VERSION)
            return INITIAL_RESOURCE_VERSION
        recorded = str((current.get("status") or {}).get("objectResourceVersion") or "0")
        self._remember((namespace, sync_name), recorded)
        return recorded

    async def record_ack(self, node: str, msg: Message) -> None:
        """Save the success point of an acked message (saveSuccessPoint)."""
        target = self._target(node, msg)
        if target is None:
            return
        namespace, sync_name, obj_name, rtype = target
        ref, ns = self._ref(namespace), self._ns(namespace)
        if msg.operation == OP_DELETE:
            self._cache.pop((namespace, sync_name), None)
            with contextlib.suppress(kubeclient.NotFound):
                await self._client.delete(ref, sync_name, namespace=ns)
            return
        rv = msg.resource_version
        if not rv:
            return
        status = {"status": {"objectResourceVersion": rv}}
        try:
            await self._client.patch(
                ref, sync_name, status, namespace=ns, patch_type="merge", subresource="status"
            )
        except kubeclient.NotFound:
            body = self._body(namespace, sync_name, obj_name, rtype, msg)
            with contextlib.suppress(kubeclient.AlreadyExists):
                await self._client.create(ref, body, namespace=ns)
            await self._client.patch(
                ref, sync_name, status, namespace=ns, patch_type="merge", subresource="status"
            )
        self._remember((namespace, sync_name), rv)

    @staticmethod
    def _body(
        namespace: str, sync_name: str, obj_name: str, rtype: str, msg: Message
    ) -> dict[str, Any]:
        obj = content_object(msg) or {}
        default_api, default_kind = KIND_BY_TYPE.get(rtype, ("", ""))
        cluster = namespace == NULL_NAMESPACE
        metadata: dict[str, Any] = {"name": sync_name}
        if not cluster:
            metadata["namespace"] = namespace
        return {
            "apiVersion": OBJECTSYNC_API_VERSION,
            "kind": "ClusterObjectSync" if cluster else "ObjectSync",
            "metadata": metadata,
            "spec": {
                "objectAPIVersion": obj.get("apiVersion") or default_api,
                "objectKind": obj.get("kind") or default_kind,
                "objectName": obj_name,
            },
        }
