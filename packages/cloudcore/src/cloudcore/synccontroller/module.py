"""The synccontroller beehive module: resends what the edge nodes are missing.

Every ``period`` seconds (KubeEdge: 5) it takes the ObjectSync and
ClusterObjectSync records, the nodes, and the objects the records name (see
below where from), then carries out :func:`reconcile.decide` for each
record: ``update``/``delete`` messages go to the ``cloudhub`` module (which
queues them like any other downstream message: a node that is offline does not
get them, and the next round tries again), records of deleted nodes are
removed. This is what brings a node back to the cluster's state after a
disconnection or a cloudcore restart (protocol.md 4.4, 4.6).

The records come from the process-wide informer caches
(:class:`~cloudcore.syncrecords.SyncRecordInformers`, shared with cloudhub's
ObjectSync recorder, as KubeEdge's listers are), and the objects and nodes from
the edgecontroller's informers (``informers``), when the module is given them
and they are synced; otherwise the round LISTs them (one cluster-wide list per
kind). The nodes informer holds edge nodes only, so a record naming a node it
does not hold makes the round list the nodes.

The process (``cloudcore --config``) builds the module with its
``kubeclient.KubeClient`` and the shared record caches::

    registry.register(SyncController(client, records=records, informers=edge.informer_for))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import kubeclient
from beehive.constants import GROUP_SYNCCONTROLLER, MOD_CLOUDHUB, MOD_SYNCCONTROLLER
from beehive.context import Context
from cloudcore.synccontroller import reconcile
from cloudcore.synccontroller.reconcile import SyncRecord
from cloudcore.syncrecords import SyncRecordInformers
from kubeclient.resources import (
    CLUSTEROBJECTSYNCS,
    CONFIGMAPS,
    DEVICEMODELS,
    DEVICES,
    NODES,
    OBJECTSYNCS,
    PODS,
    SECRETS,
    ResourceRef,
)

__all__ = ["DEFAULT_PERIOD", "InformerSource", "SyncController", "ref_for"]

log = logging.getLogger(__name__)

DEFAULT_PERIOD = 5.0

#: the process's informer for a resource, if it has one (the edgecontroller's)
InformerSource = Callable[[ResourceRef], "kubeclient.Informer | None"]
#: (namespace or None, name) -> the object, or None
Lookup = Callable[[str | None, str], "dict[str, Any] | None"]

_KNOWN_REFS: dict[tuple[str, str], ResourceRef] = {
    (ref.api_version, ref.kind): ref
    for ref in (PODS, CONFIGMAPS, SECRETS, NODES, DEVICES, DEVICEMODELS)
}


def ref_for(record: SyncRecord) -> ResourceRef:
    """The API resource of the object a record names.

    Known kinds map to kubeclient's refs; others get the lowercased plural of
    the kind, as KubeEdge derives the GVR.
    """
    known = _KNOWN_REFS.get((record.api_version, record.kind))
    if known is not None:
        return known
    group, _, version = record.api_version.rpartition("/")
    return ResourceRef(
        group, version or "v1", record.kind.lower() + "s", record.kind, record.namespace is not None
    )


class SyncController:
    """Beehive module ``synccontroller`` (group ``synccontroller``)."""

    def __init__(
        self,
        client: kubeclient.KubeClient,
        *,
        period: float = DEFAULT_PERIOD,
        records: SyncRecordInformers | None = None,
        informers: InformerSource | None = None,
    ) -> None:
        """
        Args:
            client: the API client.
            period: seconds between rounds (KubeEdge: 5).
            records: the shared record caches; None: LIST the records each round.
            informers: where to find a synced cache of the objects records name
                and of the nodes; kinds without one are LISTed each round.
        """
        if period <= 0:
            raise ValueError("period must be positive")
        self._client = client
        self.period = period
        self._cache = records
        self._informers = informers
        #: counters of the last and all rounds: ``updates``, ``deletes``,
        #: ``records_removed``, ``errors``
        self.stats: Counter[str] = Counter()

    @property
    def name(self) -> str:
        return MOD_SYNCCONTROLLER

    @property
    def group(self) -> str:
        return GROUP_SYNCCONTROLLER

    def enabled(self, config: Any) -> bool:
        modules = getattr(config, "modules", None)
        section = getattr(modules, "sync_controller", None)
        return bool(getattr(section, "enable", True))

    async def start(self, ctx: Context) -> None:
        cache = self._cache
        if cache is None:
            await self._loop(ctx)
            return
        cache.start()
        try:
            await self._loop(ctx)
        finally:
            await cache.stop()

    async def _loop(self, ctx: Context) -> None:
        while True:
            try:
                await self.reconcile_once(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The API server may be briefly unreachable; the next round retries.
                self.stats["errors"] += 1
                log.warning("synccontroller round failed: %s", exc)
            await asyncio.sleep(self.period)

    async def cleanup(self) -> None:
        return None

    async def _records(self) -> list[SyncRecord]:
        cache = self._cache
        if cache is not None and cache.synced:
            objects = cache.items()
        else:
            objects = []
            for ref in (OBJECTSYNCS, CLUSTEROBJECTSYNCS):
                listed = await self._client.list(ref)
                objects.extend(listed.get("items") or [])
        records: list[SyncRecord] = []
        for obj in objects:
            record = reconcile.parse_record(obj)
            if record is None:
                log.warning("ignoring malformed sync record %s", obj.get("metadata"))
                continue
            records.append(record)
        return records

    async def reconcile_once(self, ctx: Context) -> Counter[str]:
        """One round; returns what it did."""
        done: Counter[str] = Counter()
        records = await self._records()
        if not records:
            return done
        nodes = await self._nodes({record.node for record in records})
        objects: dict[ResourceRef, Lookup | None] = {}
        for record in records:
            ref = ref_for(record)
            if ref not in objects:
                objects[ref] = await self._lookup(ref)
        for record in records:
            lookup = objects[ref_for(record)]
            if lookup is None:
                continue  # that kind could not be listed this round
            current = lookup(record.namespace, record.object_name)
            action = reconcile.decide(
                current=current, record=record, node_exists=record.node in nodes
            )
            if isinstance(action, reconcile.DeleteRecord):
                await self._remove(record)
                done["records_removed"] += 1
            elif isinstance(action, reconcile.SendToNode):
                log.info(
                    "node=%s resync %s %s rv=%s (recorded %s)",
                    record.node,
                    action.msg.operation,
                    action.msg.resource,
                    action.msg.resource_version or "-",
                    record.recorded_rv,
                )
                await ctx.send(MOD_CLOUDHUB, action.msg)
                done["deletes" if action.msg.operation == "delete" else "updates"] += 1
        self.stats.update(done)
        return done

    def _synced_informer(self, ref: ResourceRef) -> kubeclient.Informer | None:
        informer = self._informers(ref) if self._informers is not None else None
        return informer if informer is not None and informer.synced else None

    async def _nodes(self, wanted: set[str]) -> set[str]:
        """The names among ``wanted`` that exist, from the nodes cache when it
        has them all (it may hold edge nodes only), else from a LIST."""
        informer = self._synced_informer(NODES)
        if informer is not None:
            cached = {name for name in wanted if informer.get(name) is not None}
            if cached == wanted:
                return cached
        listed = await self._client.list(NODES)
        return {n["metadata"]["name"] for n in listed.get("items") or []}

    async def _lookup(self, ref: ResourceRef) -> Lookup | None:
        informer = self._synced_informer(ref)
        if informer is not None:
            return lambda namespace, name: informer.get(name, namespace)
        index = await self._index(ref)
        if index is None:
            return None
        return lambda namespace, name: index.get((namespace, name))

    async def _index(self, ref: ResourceRef) -> dict[tuple[str | None, str], dict[str, Any]] | None:
        try:
            listed = await self._client.list(ref)
        except kubeclient.ApiError as exc:
            log.warning("cannot list %s: %s", ref.plural, exc)
            return None
        index: dict[tuple[str | None, str], dict[str, Any]] = {}
        for obj in listed.get("items") or []:
            meta = obj.get("metadata") or {}
            namespace = meta.get("namespace") if ref.namespaced else None
            index[(namespace or None, meta.get("name", ""))] = obj
        return index

    async def _remove(self, record: SyncRecord) -> None:
        ref = OBJECTSYNCS if record.namespace else CLUSTEROBJECTSYNCS
        log.info("node=%s gone: removing sync record %s", record.node, record.name)
        with contextlib.suppress(kubeclient.NotFound):
            await self._client.delete(ref, record.name, namespace=record.namespace)
