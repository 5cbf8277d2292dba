"""Node authorization lookups answered from edgecontroller's informer caches.

Implements :class:`cloudcore.cloudhub.authorization.NodeObjectIndex` (the
question "does this object belong to that node?" asked when cloudhub admits an
edge's request) without any API call: pods come from the pod informer, and
ConfigMap/Secret references from the :class:`NodeLocator`, which is built from
the same pods. Replaces the API-querying stop-gap
(``cloudhub/nodeindex.py``) once the edgecontroller runs in the process.

Before the pod informer has synced, lookups raise, so admission denies with
``lookup_failed`` and the edge retries, rather than allowing on partial data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import kubeclient
from cloudcore.edgecontroller.locator import ObjRef

if TYPE_CHECKING:
    from cloudcore.edgecontroller.controller import EdgeController

__all__ = ["InformerNodeObjectIndex", "NotSynced"]


class NotSynced(RuntimeError):
    """The informer caches are not filled yet."""


class InformerNodeObjectIndex:
    def __init__(self, controller: EdgeController) -> None:
        self._ec = controller

    def _pods(self) -> kubeclient.Informer:
        pods = self._ec.pods
        if pods is None or not pods.synced:
            raise NotSynced("pod informer has not synced yet")
        return pods

    async def pod_bound(self, node: str, namespace: str, name: str) -> bool:
        pod = self._pods().get(name, namespace)
        return pod is not None and (pod.get("spec") or {}).get("nodeName") == node

    async def pod_exists(self, namespace: str, name: str) -> bool:
        return self._pods().get(name, namespace) is not None

    async def configmap_referenced(self, node: str, namespace: str, name: str) -> bool:
        self._pods()
        return self._ec.locator.node_uses(node, ObjRef("configmap", namespace, name))

    async def secret_referenced(self, node: str, namespace: str, name: str) -> bool:
        self._pods()
        return self._ec.locator.node_uses(node, ObjRef("secret", namespace, name))

    async def serviceaccount_referenced(self, node: str, namespace: str, name: str) -> bool:
        pods = self._pods()
        for key in self._ec.locator.pods_on(node):
            ns, _, pname = key.partition("/")
            if ns != namespace:
                continue
            pod = pods.get(pname, ns)
            spec = (pod or {}).get("spec") or {}
            if (spec.get("serviceAccountName") or "default") == name:
                return True
        return False
