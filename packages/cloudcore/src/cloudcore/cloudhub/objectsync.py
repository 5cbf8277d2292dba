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
  node is offline or disconnects before it acks).

Nothing here waits for the API server on the delivery path (docs/performance.md:
awaiting a GET and a POST per new object in cloudhub's one downstream pump
capped delivery at about 160 pods/s):

* reads come from the process-wide informer caches of the records
  (:class:`~cloudcore.syncrecords.SyncRecordInformers`, as KubeEdge reads a
  lister), overlaid with what this process has written or queued and the
  watch has not shown yet (this process is the only writer of versions, so
  the overlay is never older than the API server);
* writes go to :class:`RecordWriter`: concurrent workers, strictly in order
  per record, coalescing the writes still waiting for one record (the newest
  acked version wins), retrying until they succeed. The record of a message
  therefore exists in the API server shortly after the message is queued, not
  before it is written to the edge; that is all the synccontroller needs: a
  record is what it resends from, and it only has to exist by the time the
  message could have been lost (node gone, session closed), which it does
  unless this process dies first, and then the edgecontroller's informers list
  every object again at start and the records are created then.
* :meth:`ObjectSyncRecorder.close` (cloudcore stopping) waits for the queued
  writes, so a clean restart does not send again what the edges acked.

Until the caches are first synced (cloudcore starting), a lookup waits for
them up to ``sync_timeout`` seconds; past that (the CRDs are missing, the API
server is down) it asks the API server for the one record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import kubeclient
from beehive.constants import GROUP_RESOURCE, NULL_NAMESPACE, OP_DELETE
from beehive.message import Message
from cloudcore.cloudhub.delivery import ack_key, content_object
from cloudcore.cloudhub.pressure import DeliveryPressure
from cloudcore.reliablesyncs import (
    INITIAL_RESOURCE_VERSION,
    KIND_BY_TYPE,
    OBJECTSYNC_API_VERSION,
    sync_object_name,
)
from cloudcore.syncrecords import RecordKey, SyncRecordInformers, record_key, recorded_rv
from kecommon.resources import ResourceError, compare_resource_versions, parse_node_resource
from kubeclient.resources import CLUSTEROBJECTSYNCS, OBJECTSYNCS, ResourceRef

__all__ = ["ObjectSyncRecorder", "RecordWrite", "RecordWriter"]

log = logging.getLogger(__name__)

#: concurrent record writes (each is one or two API round trips)
DEFAULT_WRITERS = 16
#: of those, how many keep writing while delivery is busy (see DeliveryPressure)
DEFAULT_BUSY_WRITERS = 2
#: how long a lookup waits for the first list of the records at start
DEFAULT_SYNC_TIMEOUT = 10.0
_RETRY_FIRST = 0.1
_RETRY_MAX = 5.0


def _ref(namespace: str) -> ResourceRef:
    return CLUSTEROBJECTSYNCS if namespace == NULL_NAMESPACE else OBJECTSYNCS


def _ns(namespace: str) -> str | None:
    return None if namespace == NULL_NAMESPACE else namespace


@dataclass(frozen=True, slots=True)
class RecordWrite:
    """One write to a record: ``ensure`` (create with "0" if missing),
    ``status`` (get-or-create, then set the acked version) or ``delete``."""

    kind: Literal["ensure", "status", "delete"]
    body: dict[str, Any]  # the record to create if it is missing
    rv: str = ""
    #: status only: the record is probably missing (it replaced an ensure that
    #: was never written), so create it first instead of trying the patch first
    create_first: bool = False


def _coalesce(waiting: list[RecordWrite], write: RecordWrite) -> None:
    """Add ``write`` to the writes still waiting for one record, keeping only
    what changes the outcome (at most a delete followed by one create/status)."""
    if write.kind == "delete":
        waiting.clear()  # nothing before a delete matters
    elif waiting and waiting[-1].kind != "delete":
        last = waiting[-1]
        if write.kind == "ensure":
            return  # the record is created by what waits already
        if last.kind == "status" and compare_resource_versions(write.rv, last.rv) == -1:
            return  # never record an older version over a newer one
        waiting.pop()  # a status write creates the record too
        if last.kind == "ensure" or last.create_first:
            write = replace(write, create_first=True)
    waiting.append(write)


class RecordWriter:
    """Writes records in the background: in order per record, concurrent across
    records, retried until they succeed (or the writer is closed)."""

    def __init__(
        self,
        client: kubeclient.KubeClient,
        *,
        workers: int = DEFAULT_WRITERS,
        busy_workers: int = DEFAULT_BUSY_WRITERS,
        pressure: DeliveryPressure | None = None,
    ) -> None:
        self._client = client
        self._workers = workers
        #: workers that write while delivery is busy; the others wait for a lull
        self._busy_workers = max(1, min(busy_workers, workers))
        self.pressure = pressure
        self._waiting: dict[RecordKey, list[RecordWrite]] = {}
        self._ready: asyncio.Queue[RecordKey] = asyncio.Queue()
        self._busy: set[RecordKey] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        #: writes done, retried after an error, and given up at close
        self.done = 0
        self.retried = 0
        #: records being written right now, and the most at once since start
        self.in_flight = 0
        self.max_in_flight = 0

    def pending(self, key: RecordKey) -> bool:
        """Whether a write for ``key`` is waiting or in progress."""
        return key in self._waiting or key in self._busy

    def __len__(self) -> int:
        return len(self._waiting) + len(self._busy)

    def submit(self, key: RecordKey, write: RecordWrite) -> None:
        if self._closed:
            log.warning("record %s/%s: writer closed, %s not written", *key, write.kind)
            return
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(i), name=f"objectsync-writer-{i}")
                for i in range(self._workers)
            ]
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = []
            if key not in self._busy:
                self._ready.put_nowait(key)
        _coalesce(waiting, write)
        self._idle.clear()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every submitted write is done.

        Raises:
            TimeoutError: writes still pending after ``timeout``.
        """
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def close(self, timeout: float = 10.0) -> None:
        """Finish the queued writes (up to ``timeout`` s), then stop the workers."""
        if self._tasks:
            try:
                await self.flush(timeout)
            except TimeoutError:
                log.warning("%d ObjectSync records not written at close", len(self))
        self._closed = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, index: int) -> None:
        yields = index >= self._busy_workers
        while True:
            if yields and self.pressure is not None:
                # Delivery first: the record of a message only has to exist
                # eventually; the few busy workers keep the backlog moving.
                await self.pressure.wait_calm()
            key = await self._ready.get()
            writes = self._waiting.pop(key, [])
            self._busy.add(key)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                for write in writes:
                    await self._write_until_done(key, write)
            finally:
                self.in_flight -= 1
                self._busy.discard(key)
                if key in self._waiting:
                    self._ready.put_nowait(key)  # more came while we wrote
                elif not self._waiting and not self._busy:
                    self._idle.set()

    async def _write_until_done(self, key: RecordKey, write: RecordWrite) -> None:
        delay = _RETRY_FIRST
        while True:
            try:
                await self._write(key, write)
                self.done += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The API server is down or overloaded: keep the write, retry.
                self.retried += 1
                log.warning(
                    "record %s/%s: %s failed (%s), retry in %.1fs",
                    key[0], key[1], write.kind, exc, delay,
                )
                await asyncio.sleep(delay)
                delay = min(_RETRY_MAX, delay * 2)

    async def _write(self, key: RecordKey, write: RecordWrite) -> None:
        namespace, name = key
        ref, ns = _ref(namespace), _ns(namespace)
        client = self._client
        if write.kind == "delete":
            with contextlib.suppress(kubeclient.NotFound):
                await client.delete(ref, name, namespace=ns)
            return
        if write.kind == "ensure":
            with contextlib.suppress(kubeclient.AlreadyExists):
                await client.create(ref, write.body, namespace=ns)
            return
        status = {"status": {"objectResourceVersion": write.rv}}
        if write.create_first:
            # A new object acked before its "0" record was written: two calls
            # (create, then the status) instead of three (patch, create, patch).
            with contextlib.suppress(kubeclient.AlreadyExists):
                await client.create(ref, write.body, namespace=ns)
            await client.patch(
                ref, name, status, namespace=ns, patch_type="merge", subresource="status"
            )
            return
        try:
            await client.patch(
                ref, name, status, namespace=ns, patch_type="merge", subresource="status"
            )
        except kubeclient.NotFound:
            with contextlib.suppress(kubeclient.AlreadyExists):
                await client.create(ref, write.body, namespace=ns)
            await client.patch(
                ref, name, status, namespace=ns, patch_type="merge", subresource="status"
            )


class ObjectSyncRecorder:
    """Reads the (Cluster)ObjectSync records from the informer caches and
    writes them through :class:`RecordWriter`. See the module doc."""

    def __init__(
        self,
        client: kubeclient.KubeClient,
        *,
        records: SyncRecordInformers | None = None,
        workers: int = DEFAULT_WRITERS,
        sync_timeout: float = DEFAULT_SYNC_TIMEOUT,
        pressure: DeliveryPressure | None = None,
    ) -> None:
        self._client = client
        self._records = records or SyncRecordInformers(client)
        self._records.add_handlers(self._seen, self._seen_deleted)
        self.writer = RecordWriter(client, workers=workers, pressure=pressure)
        self._sync_timeout = sync_timeout
        self._started = False
        self._closed = False
        self._sync_deadline = 0.0
        # key -> the version this process wrote or queued, until the watch shows it
        self._overlay: dict[RecordKey, str] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start watching the records (also done by the first lookup or ack)."""
        if not self._started and not self._closed:
            self._started = True
            self._sync_deadline = time.monotonic() + self._sync_timeout
            self._records.start()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued record write is in the API server."""
        await self.writer.flush(timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (up to ``timeout`` s) and stop watching.

        Afterwards lookups answer None (unknown) and acks are not recorded:
        the sessions are gone by then, and a restarted cloudcore creates the
        records of whatever its informers list.
        """
        self._closed = True
        await self.writer.close(timeout)
        if self._started:
            self._started = False
            await self._records.stop()

    # -- the informer keeps the overlay small --------------------------------------------

    def overlay_size(self) -> int:
        """Versions held in memory because the watch has not shown them yet."""
        return len(self._overlay)

    def _seen(self, obj: dict[str, Any]) -> None:
        key = record_key(obj)
        mine = self._overlay.get(key)
        if mine is None or self.writer.pending(key):
            return
        if compare_resource_versions(recorded_rv(obj), mine) in (0, 1):
            del self._overlay[key]

    def _seen_deleted(self, obj: dict[str, Any]) -> None:
        key = record_key(obj)
        if not self.writer.pending(key):
            self._overlay.pop(key, None)

    # -- reads and writes ----------------------------------------------------------------

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

    async def _cached(self, key: RecordKey) -> dict[str, Any] | bool | None:
        """The cached record, None if there is none, or False if the caches are
        not synced and will not be in time (ask the API server instead)."""
        records = self._records
        if not records.synced:
            remaining = self._sync_deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await records.wait_synced(remaining)
            except TimeoutError:
                log.warning(
                    "ObjectSync caches not synced after %.0fs: reading records from the API",
                    self._sync_timeout,
                )
                return False
        return records.get(key)

    async def recorded_version(self, node: str, msg: Message) -> str | None:
        """The version recorded for ``msg``'s object; queues the record's
        creation with ``"0"`` if there is none. None if the message is not
        recordable."""
        target = self._target(node, msg)
        if target is None or self._closed:
            return None
        self.start()
        namespace, sync_name, obj_name, rtype = target
        key = (namespace, sync_name)
        mine = self._overlay.get(key)
        if mine is not None:
            return mine
        cached = await self._cached(key)
        if cached is False:
            try:
                cached = await self._client.get(
                    _ref(namespace), sync_name, namespace=_ns(namespace)
                )
            except kubeclient.NotFound:
                cached = None
            else:
                # Remembered until the watch shows it, as if we had written it.
                self._overlay[key] = recorded_rv(cached)
        if isinstance(cached, dict):
            return recorded_rv(cached)
        self._overlay[key] = INITIAL_RESOURCE_VERSION
        body = self._body(namespace, sync_name, obj_name, rtype, msg)
        self.writer.submit(key, RecordWrite("ensure", body))
        return INITIAL_RESOURCE_VERSION

    async def record_ack(self, node: str, msg: Message) -> None:
        """Queue the success point of an acked message (saveSuccessPoint)."""
        target = self._target(node, msg)
        if target is None:
            return
        if self._closed:
            log.warning("node=%s ack of msg_id=%s after close, not recorded", node, msg.msg_id)
            return
        namespace, sync_name, obj_name, rtype = target
        key = (namespace, sync_name)
        body = self._body(namespace, sync_name, obj_name, rtype, msg)
        if msg.operation == OP_DELETE:
            self._overlay.pop(key, None)
            self.start()
            self.writer.submit(key, RecordWrite("delete", body))
            return
        rv = msg.resource_version
        if not rv:
            return
        if self._newer_recorded(key, rv):
            # A reply to an edge query acked after a newer update of the object.
            return
        self.start()
        self._overlay[key] = rv
        self.writer.submit(key, RecordWrite("status", body, rv))

    def _newer_recorded(self, key: RecordKey, rv: str) -> bool:
        """Whether this process knows of a record newer than ``rv`` (what it
        wrote, or the cache once synced; no waiting on the ack path)."""
        known = self._overlay.get(key)
        if known is None and self._records.synced:
            cached = self._records.get(key)
            known = recorded_rv(cached) if cached is not None else None
        return known is not None and compare_resource_versions(rv, known) == -1

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
