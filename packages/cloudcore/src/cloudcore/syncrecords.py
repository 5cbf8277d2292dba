"""The process-wide caches of ObjectSync and ClusterObjectSync records.

KubeEdge's cloudhub and synccontroller read the reliablesyncs records from one
shared informer per kind (``enqueueAckMessage`` uses a lister, the sync loop
lists from the cache); so do we: :class:`SyncRecordInformers` holds one
:class:`kubeclient.Informer` on ``objectsyncs`` (all namespaces) and one on
``clusterobjectsyncs``, i.e. two watches for the whole cloudcore process,
shared by cloudhub's :class:`~cloudcore.cloudhub.objectsync.ObjectSyncRecorder`
and the :class:`~cloudcore.synccontroller.module.SyncController`.

Users ``start()`` and ``stop()`` it; the watches run while at least one user
has started it and not stopped it (a reference count), so the two modules need
not agree on who owns it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import kubeclient
from beehive.constants import NULL_NAMESPACE
from kubeclient.resources import CLUSTEROBJECTSYNCS, OBJECTSYNCS

__all__ = ["RecordKey", "SyncRecordInformers", "record_key", "recorded_rv"]

log = logging.getLogger(__name__)

#: (namespace, record name); the namespace is ``null`` for a ClusterObjectSync
RecordKey = tuple[str, str]

Obj = dict[str, Any]


def record_key(obj: Obj) -> RecordKey:
    """The key of a record object as cloudhub names it."""
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or NULL_NAMESPACE, str(meta.get("name") or ""))


def recorded_rv(obj: Obj) -> str:
    """``status.objectResourceVersion``; ``"0"`` when not set (never acked)."""
    return str((obj.get("status") or {}).get("objectResourceVersion") or "0")


class SyncRecordInformers:
    """Two informers (namespaced and cluster-scoped records) and their caches."""

    def __init__(self, client: kubeclient.KubeClient) -> None:
        self.objectsyncs = kubeclient.Informer(client, OBJECTSYNCS)
        self.clusterobjectsyncs = kubeclient.Informer(client, CLUSTEROBJECTSYNCS)
        self._users = 0
        self._lock = asyncio.Lock()

    def add_handlers(
        self,
        on_change: Callable[[Obj], None],
        on_delete: Callable[[Obj], None],
    ) -> None:
        """Call ``on_change`` for every added or updated record, ``on_delete`` for removals."""
        for informer in (self.objectsyncs, self.clusterobjectsyncs):
            informer.add_handlers(
                on_add=on_change,
                on_update=lambda _old, new: on_change(new),
                on_delete=on_delete,
            )

    def start(self) -> None:
        """Start the watches (counted: each ``start`` needs a ``stop``)."""
        self._users += 1
        self.objectsyncs.start()
        self.clusterobjectsyncs.start()

    async def stop(self) -> None:
        """Stop the watches once every user has stopped."""
        async with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users:
                return
            await self.objectsyncs.stop()
            await self.clusterobjectsyncs.stop()

    @property
    def watching(self) -> bool:
        """Whether some user has started the watches and not stopped them."""
        return self._users > 0

    @property
    def synced(self) -> bool:
        return self.objectsyncs.synced and self.clusterobjectsyncs.synced

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait until both kinds were listed once.

        Raises:
            TimeoutError: not synced within ``timeout``.
        """
        async with asyncio.timeout(timeout):
            await self.objectsyncs.wait_synced()
            await self.clusterobjectsyncs.wait_synced()

    def get(self, key: RecordKey) -> Obj | None:
        """The cached record, or None."""
        namespace, name = key
        if namespace == NULL_NAMESPACE:
            return self.clusterobjectsyncs.get(name)
        return self.objectsyncs.get(name, namespace)

    def items(self) -> list[Obj]:
        """Every cached record, namespaced ones first."""
        return self.objectsyncs.items() + self.clusterobjectsyncs.items()
