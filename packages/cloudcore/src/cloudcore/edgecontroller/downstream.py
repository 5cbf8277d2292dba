"""Cloud -> edge: turn informer events into messages for cloudhub.

Mirrors ``cloud/pkg/edgecontroller/controller/downstream.go`` (protocol.md 2.2
and the pods capture):

======================  ==========================  ===========================
object                  event -> operation          to which nodes
======================  ==========================  ===========================
Node (edge-labelled)    Added/Modified -> update,   the node itself
                        Deleted -> delete           (``null/node/<name>``)
Pod                     Added -> insert,            ``spec.nodeName`` if it is
                        Modified -> update,         an edge node
                        Deleted -> delete
ConfigMap               Added -> insert,            nodes whose pods use it
                        Modified -> update,         (:class:`NodeLocator`)
                        Deleted -> delete
Secret                  Added/Modified -> update,   nodes whose pods use it
                        Deleted -> delete
======================  ==========================  ===========================

Beyond KubeEdge: when a node becomes an edge node its already bound pods are
sent, and when the last pod on a node that used a ConfigMap/Secret goes away
that node gets a ``delete`` for the object so that it does not keep a stale
copy it would never hear about again.

Every message goes to the beehive module ``cloudhub`` with ``ctx.send``; a full
queue blocks the informer (back-pressure, no drop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kubeclient
from beehive.constants import (
    OP_DELETE,
    OP_INSERT,
    OP_UPDATE,
    RT_CONFIGMAP,
    RT_NODE,
    RT_POD,
    RT_SECRET,
)
from beehive.context import Context
from beehive.exceptions import BeehiveError
from beehive.message import Message
from cloudcore.edgecontroller.locator import NodeLocator, ObjRef
from cloudcore.edgecontroller.messages import object_message

__all__ = ["EDGE_NODE_LABEL", "Downstream", "is_edge_node"]

log = logging.getLogger(__name__)

#: the label that makes a node an edge node (value must be empty)
EDGE_NODE_LABEL = "node-role.kubernetes.io/edge"

Obj = dict[str, Any]


def is_edge_node(node: Obj) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return labels.get(EDGE_NODE_LABEL) == ""


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _ns(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


class Downstream:
    """Informer handlers of edgecontroller."""

    def __init__(
        self,
        ctx: Context,
        locator: NodeLocator,
        *,
        pods: Callable[[], kubeclient.Informer | None],
        configmaps: Callable[[], kubeclient.Informer | None],
        secrets: Callable[[], kubeclient.Informer | None],
        target: str = "cloudhub",
    ) -> None:
        self.ctx = ctx
        self.locator = locator
        self._pods = pods
        self._configmaps = configmaps
        self._secrets = secrets
        self.target = target

    async def send(self, msg: Message) -> None:
        try:
            await self.ctx.send(self.target, msg)
        except BeehiveError as exc:
            log.error("cannot hand %s to %s: %s", msg.describe(), self.target, exc)
            return
        if log.isEnabledFor(logging.DEBUG):  # no describe() per message
            log.debug("downstream %s", msg.describe())

    # -- nodes --------------------------------------------------------------------

    async def node_added(self, node: Obj) -> None:
        await self._node_changed(node)

    async def node_updated(self, old: Obj, node: Obj) -> None:
        await self._node_changed(node)

    async def _node_changed(self, node: Obj) -> None:
        name = _name(node)
        if not is_edge_node(node):
            if name in self.locator.edge_nodes:
                await self.node_deleted(node)
            return
        became_edge = name not in self.locator.edge_nodes
        self.locator.edge_nodes.add(name)
        await self.send(object_message(name, node, RT_NODE, OP_UPDATE, ref=kubeclient.NODES))
        if became_edge:
            await self._replay_pods(name)

    async def node_deleted(self, node: Obj) -> None:
        name = _name(node)
        self.locator.edge_nodes.discard(name)
        # node/<n>/null/node/<n>: cloudhub ends the node's session on this
        # delete instead of sending it (protocol.md 3.8).
        await self.send(object_message(name, node, RT_NODE, OP_DELETE, ref=kubeclient.NODES))

    async def _replay_pods(self, node: str) -> None:
        pods = self._pods()
        if pods is None:
            return
        for key in self.locator.pods_on(node):
            ns, _, pname = key.partition("/")
            pod = pods.get(pname, ns)
            if pod is not None:
                log.info("node %s became an edge node: sending pod %s", node, key)
                await self.send(object_message(node, pod, RT_POD, OP_INSERT, ref=kubeclient.PODS))

    # -- pods ------------------------------------------------------------------------

    async def pod_added(self, pod: Obj) -> None:
        await self._pod_event(pod, OP_INSERT)

    async def pod_updated(self, old: Obj, pod: Obj) -> None:
        await self._pod_event(pod, OP_UPDATE)

    async def _pod_event(self, pod: Obj, operation: str) -> None:
        dropped = self.locator.update_pod(pod)
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if node and node in self.locator.edge_nodes:
            await self.send(object_message(node, pod, RT_POD, operation, ref=kubeclient.PODS))
        await self._forget(dropped)

    async def pod_deleted(self, pod: Obj) -> None:
        dropped = self.locator.delete_pod(pod)
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if node and node in self.locator.edge_nodes:
            await self.send(object_message(node, pod, RT_POD, OP_DELETE, ref=kubeclient.PODS))
        await self._forget(dropped)

    async def _forget(self, dropped: list[tuple[ObjRef, str]]) -> None:
        """Tell nodes no pod of theirs uses an object any more to drop their copy."""
        for ref, node in dropped:
            if node not in self.locator.edge_nodes:
                continue
            informer = self._configmaps() if ref.kind == RT_CONFIGMAP else self._secrets()
            obj = informer.get(ref.name, ref.namespace) if informer is not None else None
            if obj is None:
                continue  # already deleted: the delete went out with the object
            api = kubeclient.CONFIGMAPS if ref.kind == RT_CONFIGMAP else kubeclient.SECRETS
            log.info("node %s no longer uses %s %s/%s: delete", node, ref.kind,
                     ref.namespace, ref.name)
            await self.send(object_message(node, obj, ref.kind, OP_DELETE, ref=api))

    # -- configmaps and secrets ----------------------------------------------------

    async def configmap_added(self, obj: Obj) -> None:
        await self._fan_out(obj, RT_CONFIGMAP, OP_INSERT, kubeclient.CONFIGMAPS)

    async def configmap_updated(self, old: Obj, obj: Obj) -> None:
        await self._fan_out(obj, RT_CONFIGMAP, OP_UPDATE, kubeclient.CONFIGMAPS)

    async def configmap_deleted(self, obj: Obj) -> None:
        await self._fan_out(obj, RT_CONFIGMAP, OP_DELETE, kubeclient.CONFIGMAPS)

    async def secret_added(self, obj: Obj) -> None:
        # KubeEdge sends an added Secret as an update (protocol.md 2.2).
        await self._fan_out(obj, RT_SECRET, OP_UPDATE, kubeclient.SECRETS)

    async def secret_updated(self, old: Obj, obj: Obj) -> None:
        await self._fan_out(obj, RT_SECRET, OP_UPDATE, kubeclient.SECRETS)

    async def secret_deleted(self, obj: Obj) -> None:
        await self._fan_out(obj, RT_SECRET, OP_DELETE, kubeclient.SECRETS)

    async def _fan_out(self, obj: Obj, kind: str, operation: str,
                       api: kubeclient.ResourceRef) -> None:
        ref = ObjRef(kind, _ns(obj), _name(obj))  # type: ignore[arg-type]
        for node in self.locator.nodes_for(ref):
            await self.send(object_message(node, obj, kind, operation, ref=api))
