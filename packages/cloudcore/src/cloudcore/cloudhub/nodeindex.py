"""A :class:`~cloudcore.cloudhub.authorization.NodeObjectIndex` that asks the API server.

Stop-gap until the edgecontroller's pod informer implements the Protocol from
its cache: every check is one GET (pod) or one LIST of the namespace's pods,
filtered here by ``spec.nodeName`` (not every API server we test against
supports field selectors). References are found the way the Kubernetes Node
authorizer's graph finds them: volumes (direct and projected), ``env``
``valueFrom`` and ``envFrom`` of every container kind, ``imagePullSecrets`` and
``serviceAccountName``.
"""

from __future__ import annotations

from typing import Any

import kubeclient
from cloudcore.cloudhub.authorization import pod_references
from kubeclient.resources import PODS

__all__ = ["CacheFirstNodeObjectIndex", "KubeNodeObjectIndex"]


class KubeNodeObjectIndex:
    """Ownership checks through ``kubeclient`` (no cache)."""

    def __init__(self, client: kubeclient.KubeClient) -> None:
        self._client = client

    async def pod_bound(self, node: str, namespace: str, name: str) -> bool:
        try:
            pod = await self._client.get(PODS, name, namespace=namespace)
        except kubeclient.NotFound:
            return False
        return bool((pod.get("spec") or {}).get("nodeName") == node)

    async def pod_exists(self, namespace: str, name: str) -> bool:
        try:
            await self._client.get(PODS, name, namespace=namespace)
        except kubeclient.NotFound:
            return False
        return True

    async def _referenced(self, node: str, namespace: str, kind: str, name: str) -> bool:
        pods = await self._client.list(PODS, namespace=namespace)
        for pod in pods.get("items") or []:
            if (pod.get("spec") or {}).get("nodeName") != node:
                continue
            if name in pod_references(pod)[kind]:
                return True
        return False

    async def configmap_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._referenced(node, namespace, "configmap", name)

    async def secret_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._referenced(node, namespace, "secret", name)

    async def serviceaccount_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._referenced(node, namespace, "serviceaccount", name)


class CacheFirstNodeObjectIndex:
    """Answers from the edgecontroller's informer caches once they are synced.

    Until then (cloudcore just started and edges reconnect at once) it asks the
    API server through ``fallback``, so a node is not refused its own objects
    while the caches fill. A synced cache's "no" is final: confirming every
    denial with the API would let a misbehaving node turn each refused message
    into API calls.
    """

    def __init__(self, cache: Any, fallback: Any, *, not_ready: type[Exception]) -> None:
        self._cache = cache
        self._fallback = fallback
        self._not_ready = not_ready

    async def _ask(self, method: str, node: str, namespace: str, name: str) -> bool:
        try:
            return bool(await getattr(self._cache, method)(node, namespace, name))
        except self._not_ready:
            return bool(await getattr(self._fallback, method)(node, namespace, name))

    async def pod_bound(self, node: str, namespace: str, name: str) -> bool:
        return await self._ask("pod_bound", node, namespace, name)

    async def pod_exists(self, namespace: str, name: str) -> bool:
        try:
            return bool(await self._cache.pod_exists(namespace, name))
        except self._not_ready:
            return bool(await self._fallback.pod_exists(namespace, name))

    async def configmap_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._ask("configmap_referenced", node, namespace, name)

    async def secret_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._ask("secret_referenced", node, namespace, name)

    async def serviceaccount_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._ask("serviceaccount_referenced", node, namespace, name)
