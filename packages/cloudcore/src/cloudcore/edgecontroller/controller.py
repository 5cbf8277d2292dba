"""The edgecontroller beehive module (name and group ``edgecontroller``).

Mirrors ``cloud/pkg/edgecontroller``. One process-wide informer per resource
type (edge nodes, pods, configmaps, secrets): a watch per type, never per
node (pods cannot be field-selected on many nodes at once). Informer events go
through :class:`~cloudcore.edgecontroller.downstream.Downstream` to cloudhub;
upstream requests from ``ctx.receive("edgecontroller")`` are handled by
:class:`~cloudcore.edgecontroller.upstream.Upstream`, in order per node and in
parallel across nodes (:class:`~cloudcore.keyedworkers.KeyedWorkers`).

Tasks (all named): ``edgecontroller-informers`` starts the informers in
dependency order (nodes, then pods, then configmaps/secrets), one task per
informer, ``edgecontroller-health`` marks silent nodes Unknown, and the module
body itself receives upstream messages. ``cleanup`` stops all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import kubeclient
from beehive.constants import GROUP_EDGECONTROLLER, MOD_EDGECONTROLLER
from beehive.context import Context
from cloudcore.controlloop import receive_into_workers, supervise
from cloudcore.edgecontroller.downstream import EDGE_NODE_LABEL, Downstream
from cloudcore.edgecontroller.health import NodeHealth
from cloudcore.edgecontroller.locator import NodeLocator
from cloudcore.edgecontroller.objectindex import InformerNodeObjectIndex
from cloudcore.edgecontroller.settings import EdgeControllerSettings
from cloudcore.edgecontroller.upstream import Upstream
from cloudcore.keyedworkers import KeyedWorkers

__all__ = ["EdgeController", "mark_node_unknown"]

log = logging.getLogger(__name__)

#: the node conditions kubelet owns; all become Unknown when it goes silent
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


class EdgeController:
    """The edgecontroller module; see the module docstring."""

    name = MOD_EDGECONTROLLER
    group = GROUP_EDGECONTROLLER

    def __init__(
        self,
        client: kubeclient.KubeClient,
        *,
        settings: EdgeControllerSettings | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or EdgeControllerSettings()
        self.locator = NodeLocator()
        self.health = NodeHealth(self.settings.node_monitor_grace_period)
        self.nodes: kubeclient.Informer | None = None
        self.pods: kubeclient.Informer | None = None
        self.configmaps: kubeclient.Informer | None = None
        self.secrets: kubeclient.Informer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._workers: KeyedWorkers | None = None
        self._synced = asyncio.Event()

    def enabled(self, config: Any) -> bool:
        ec = getattr(getattr(config, "modules", None), "edge_controller", None)
        return bool(getattr(ec, "enable", True))

    def object_index(self) -> InformerNodeObjectIndex:
        """Node authorization lookups from this controller's caches (cloudhub's
        ``NodeObjectIndex``)."""
        return InformerNodeObjectIndex(self)

    def informer_for(self, ref: kubeclient.ResourceRef) -> kubeclient.Informer | None:
        """This controller's informer for ``ref`` (None before start or if it has
        none); the synccontroller reads objects and nodes from them. The nodes
        informer holds edge nodes only."""
        return {
            kubeclient.NODES: self.nodes,
            kubeclient.PODS: self.pods,
            kubeclient.CONFIGMAPS: self.configmaps,
            kubeclient.SECRETS: self.secrets,
        }.get(ref)

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait until every informer has listed once (for tests and readiness)."""
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    async def start(self, ctx: Context) -> None:
        ctx.add_module(self.name, self.group)
        down = Downstream(
            ctx, self.locator,
            pods=lambda: self.pods, configmaps=lambda: self.configmaps,
            secrets=lambda: self.secrets,
        )
        up = Upstream(
            ctx, self.client, self.health,
            cloudcore_address=self.settings.cloudcore_address,
            cluster_ca=self.settings.cluster_ca,
            configmaps=lambda: self.configmaps, secrets=lambda: self.secrets,
        )
        c = self.client
        # Existence selector, then an exact check of the empty value in
        # Downstream: "key=" (empty value) is not understood by every server.
        self.nodes = kubeclient.Informer(c, kubeclient.NODES, label_selector=EDGE_NODE_LABEL,
                                         name="edge-nodes")
        self.nodes.add_handlers(down.node_added, down.node_updated, down.node_deleted)
        self.pods = kubeclient.Informer(c, kubeclient.PODS)
        self.pods.add_handlers(down.pod_added, down.pod_updated, down.pod_deleted)
        self.configmaps = kubeclient.Informer(c, kubeclient.CONFIGMAPS)
        self.configmaps.add_handlers(down.configmap_added, down.configmap_updated,
                                     down.configmap_deleted)
        self.secrets = kubeclient.Informer(c, kubeclient.SECRETS)
        self.secrets.add_handlers(down.secret_added, down.secret_updated, down.secret_deleted)
        self._workers = KeyedWorkers(limit=self.settings.concurrency, name="edgecontroller")
        self._tasks = [
            asyncio.create_task(self._start_informers(), name="edgecontroller-informers"),
            asyncio.create_task(self._health_loop(), name="edgecontroller-health"),
            asyncio.create_task(self._receive_loop(ctx, up), name="edgecontroller-upstream"),
        ]
        log.info("edgecontroller started")
        try:
            # Runs until the context closes (the receiver returns) or a task dies.
            await supervise(self._tasks, main=self._tasks[-1])
        finally:
            await self.cleanup()

    async def _receive_loop(self, ctx: Context, up: Upstream) -> None:
        assert self._workers is not None
        await receive_into_workers(ctx, self.name, self._workers, handle=up.handle,
                                   key=up.node_key)

    async def _start_informers(self) -> None:
        assert self.nodes is not None and self.pods is not None
        assert self.configmaps is not None and self.secrets is not None
        # Nodes first so pods are routed; pods before configmaps/secrets so the
        # locator knows who uses what when their initial adds arrive.
        for inf in (self.nodes, self.pods):
            inf.start()
            await inf.wait_synced()
        self.configmaps.start()
        self.secrets.start()
        await self.configmaps.wait_synced()
        await self.secrets.wait_synced()
        self._synced.set()
        log.info("edgecontroller informers synced: %d edge nodes, %d pods, %d configmaps, "
                 "%d secrets", len(self.nodes), len(self.pods), len(self.configmaps),
                 len(self.secrets))

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.node_check_interval)
            for node in self.health.due(time.monotonic()):
                if self.nodes is not None and self.nodes.get(node) is None:
                    # Not (or no longer) an edge node: drop its state, or every
                    # node that ever connected would stay in the table.
                    self.health.forget(node)
                    continue
                try:
                    await mark_node_unknown(self.client, node)
                except kubeclient.KubeClientError as exc:
                    log.warning("node %s: cannot mark Unknown: %s", node, exc)

    async def cleanup(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._workers is not None:
            await self._workers.close()
        for inf in (self.nodes, self.pods, self.configmaps, self.secrets):
            if inf is not None:
                await inf.stop()


async def mark_node_unknown(client: kubeclient.KubeClient, node: str, *,
                            attempts: int = 3) -> bool:
    """Set the kubelet conditions of ``node`` to Unknown, as the node lifecycle
    controller does when a kubelet stops posting status.

    Read-modify-write of ``nodes/<n>/status`` with optimistic concurrency.

    Returns:
        True if the status was changed, False if it already was Unknown.
    """
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for _ in range(attempts):
        obj = await client.get(kubeclient.NODES, node)
        status = obj.setdefault("status", {})
        conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
        changed = False
        seen = {c.get("type") for c in conditions}
        for cond in conditions:
            if cond.get("type") in KUBELET_CONDITIONS and cond.get("status") != "Unknown":
                cond.update(status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.",
                            lastTransitionTime=now)
                changed = True
        if "Ready" not in seen:
            conditions.append({"type": "Ready", "status": "Unknown",
                               "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.",
                               "lastHeartbeatTime": now, "lastTransitionTime": now})
            changed = True
        if not changed:
            return False
        try:
            await client.replace(kubeclient.NODES, node, obj, subresource="status")
        except kubeclient.Conflict:
            continue
        log.warning("node %s: Ready is Unknown (no status from the edge)", node)
        return True
    return False
