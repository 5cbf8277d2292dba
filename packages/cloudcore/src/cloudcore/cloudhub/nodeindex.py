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

from collections.abc import Iterator
from typing import Any

import kubeclient
from kubeclient.resources import PODS

__all__ = ["KubeNodeObjectIndex", "pod_references"]

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))


def pod_references(pod: dict[str, Any]) -> dict[str, set[str]]:
    """Names of the configmaps, secrets and service account a pod uses."""
    spec = pod.get("spec") or {}
    refs: dict[str, set[str]] = {"configmap": set(), "secret": set(), "serviceaccount": set()}
    refs["serviceaccount"].add(spec.get("serviceAccountName") or "default")
    for ref in _dicts(spec.get("imagePullSecrets")):
        if ref.get("name"):
            refs["secret"].add(ref["name"])
    for vol in _dicts(spec.get("volumes")):
        if isinstance(vol.get("configMap"), dict) and vol["configMap"].get("name"):
            refs["configmap"].add(vol["configMap"]["name"])
        if isinstance(vol.get("secret"), dict) and vol["secret"].get("secretName"):
            refs["secret"].add(vol["secret"]["secretName"])
        projected = vol.get("projected")
        if isinstance(projected, dict):
            for src in _dicts(projected.get("sources")):
                if isinstance(src.get("configMap"), dict) and src["configMap"].get("name"):
                    refs["configmap"].add(src["configMap"]["name"])
                if isinstance(src.get("secret"), dict) and src["secret"].get("name"):
                    refs["secret"].add(src["secret"]["name"])
    for key in _CONTAINER_LISTS:
        for container in _dicts(spec.get(key)):
            for env in _dicts(container.get("env")):
                source = env.get("valueFrom")
                if not isinstance(source, dict):
                    continue
                cm = source.get("configMapKeyRef")
                if isinstance(cm, dict) and cm.get("name"):
                    refs["configmap"].add(cm["name"])
                sec = source.get("secretKeyRef")
                if isinstance(sec, dict) and sec.get("name"):
                    refs["secret"].add(sec["name"])
            for env_from in _dicts(container.get("envFrom")):
                cm = env_from.get("configMapRef")
                if isinstance(cm, dict) and cm.get("name"):
                    refs["configmap"].add(cm["name"])
                sec = env_from.get("secretRef")
                if isinstance(sec, dict) and sec.get("name"):
                    refs["secret"].add(sec["name"])
    return refs


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

    async def _referenced(self, node: str, namespace: str, kind: str, name: str) -> bool:
        pods = await self._client.list(PODS, namespace=namespace)
        for pod in _dicts(pods.get("items")):
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
