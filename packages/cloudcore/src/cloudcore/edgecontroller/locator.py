"""NodeLocator: which edge nodes need which ConfigMaps and Secrets.

Mirrors ``cloud/pkg/edgecontroller/manager/location.go`` (LocationCache) with
one deliberate difference. KubeEdge only ever adds a node to a ConfigMap's or
Secret's node list; we keep exact reference counts from the pods, so that when
the last pod on a node that used an object goes away the node stops receiving
that object and is told to drop its copy (a ``delete``), instead of receiving
its updates forever.

References are collected from every place a pod can name one (as
``PodConfigMapsAndSecrets`` does): volumes, projected volume sources, env
``valueFrom`` (configMapKeyRef / secretKeyRef), ``envFrom`` and
``imagePullSecrets``, over containers, init containers and ephemeral
containers.

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["NodeLocator", "ObjRef", "pod_references"]

Kind = Literal["configmap", "secret"]


@dataclass(frozen=True, slots=True, order=True)
class ObjRef:
    """A ConfigMap or Secret: ``kind`` is the wire resource type."""

    kind: Kind
    namespace: str
    name: str


def pod_references(pod: dict[str, Any]) -> frozenset[ObjRef]:
    """Every ConfigMap and Secret the pod refers to."""
    meta = pod.get("metadata") or {}
    ns = str(meta.get("namespace") or "default")
    spec = pod.get("spec") or {}
    refs: set[ObjRef] = set()

    def cm(name: Any) -> None:
        if name:
            refs.add(ObjRef("configmap", ns, str(name)))

    def secret(name: Any) -> None:
        if name:
            refs.add(ObjRef("secret", ns, str(name)))

    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        cm((vol.get("configMap") or {}).get("name"))
        secret((vol.get("secret") or {}).get("secretName"))
        for source in (vol.get("projected") or {}).get("sources") or []:
            if isinstance(source, dict):
                cm((source.get("configMap") or {}).get("name"))
                secret((source.get("secret") or {}).get("name"))
    containers = [
        *(spec.get("containers") or []),
        *(spec.get("initContainers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    for c in containers:
        if not isinstance(c, dict):
            continue
        for env in c.get("env") or []:
            value_from = (env or {}).get("valueFrom") or {}
            cm((value_from.get("configMapKeyRef") or {}).get("name"))
            secret((value_from.get("secretKeyRef") or {}).get("name"))
        for env_from in c.get("envFrom") or []:
            cm(((env_from or {}).get("configMapRef") or {}).get("name"))
            secret(((env_from or {}).get("secretRef") or {}).get("name"))
    for ips in spec.get("imagePullSecrets") or []:
        secret((ips or {}).get("name"))
    return frozenset(refs)


class NodeLocator:
    """Reference counts: (object, node) -> number of pods on that node using it.

    ``update_pod``/``delete_pod`` return the (object, node) pairs whose count
    dropped to zero, so the caller can tell those nodes to forget the object.
    Pods are tracked whatever their node (an edge node may be labelled after
    its pods were bound); callers filter on edge nodes when sending.
    """

    def __init__(self) -> None:
        self._pods: dict[str, tuple[str, frozenset[ObjRef]]] = {}
        self._count: dict[ObjRef, Counter[str]] = {}
        self.edge_nodes: set[str] = set()

    @staticmethod
    def pod_key(pod: dict[str, Any]) -> str:
        meta = pod.get("metadata") or {}
        return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"

    def update_pod(self, pod: dict[str, Any]) -> list[tuple[ObjRef, str]]:
        """Record the pod's current node and references; return dropped pairs."""
        key = self.pod_key(pod)
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        refs = pod_references(pod) if node else frozenset()
        old = self._pods.get(key)
        if old == (node, refs):
            return []
        for ref in refs:
            self._count.setdefault(ref, Counter())[node] += 1
        if node:
            self._pods[key] = (node, refs)
        else:
            self._pods.pop(key, None)
        return self._release(old)

    def delete_pod(self, pod: dict[str, Any]) -> list[tuple[ObjRef, str]]:
        """Forget the pod; return the (object, node) pairs no pod uses any more."""
        return self._release(self._pods.pop(self.pod_key(pod), None))

    def _release(self, old: tuple[str, frozenset[ObjRef]] | None) -> list[tuple[ObjRef, str]]:
        if old is None:
            return []
        node, refs = old
        dropped: list[tuple[ObjRef, str]] = []
        for ref in sorted(refs):
            counts = self._count.get(ref)
            if counts is None:
                continue
            counts[node] -= 1
            if counts[node] <= 0:
                del counts[node]
                dropped.append((ref, node))
            if not counts:
                del self._count[ref]
        return dropped

    def nodes_for(self, ref: ObjRef) -> list[str]:
        """Edge nodes that have a pod using ``ref``, sorted."""
        counts: Counter[str] = self._count.get(ref) or Counter()
        return sorted(n for n in counts if n in self.edge_nodes)

    def pods_on(self, node: str) -> list[str]:
        """Keys (``ns/name``) of the tracked pods bound to ``node``."""
        return sorted(k for k, (n, _) in self._pods.items() if n == node)

    def refs_of_node(self, node: str) -> set[ObjRef]:
        """Every object some pod on ``node`` uses."""
        return {ref for ref, counts in self._count.items() if node in counts}

    def node_uses(self, node: str, ref: ObjRef) -> bool:
        """Whether a pod on ``node`` uses ``ref`` (one dict lookup)."""
        counts = self._count.get(ref)
        return counts is not None and counts.get(node, 0) > 0
