"""Node authorization of upstream messages (message admission).

KubeEdge's ``cloud/pkg/cloudhub/authorization`` maps each upstream route to a
SubjectAccessReview for ``system:node:<id>`` and is **off** by default. Ours is
**on** by default and decides locally, with the same intent as the Kubernetes
Node authorizer: a node may touch only

* its own Node: ``null/node/<id>``, ``null/nodepatch/<id>``,
  ``null/nodestatus/<id>`` (and the deprecated ``<ns>/nodestatus/<id>``);
* its own Lease: ``kube-node-lease/lease/<id>``;
* pods bound to it (``spec.nodeName == <id>``): ``<ns>/pod|podpatch|podstatus/<name>``;
  a pod ``insert`` (mirror pod) is admitted when its content is bound to the node;
  a pod ``delete`` of a pod that does not exist at all is answered
  :class:`Absent` (cloudhub replies NotFound, as the API server would, and
  forwards nothing): edged's delete races the API removing the pod (a terminal
  pod, a namespace deletion), and "already gone" is what it asked for. A pod that
  exists on another node is still refused, so nothing is weakened: a node can
  never delete, nor learn anything about, a pod bound elsewhere beyond "exists";
* configmaps, secrets and service account tokens referenced by pods bound to it;
* events (the Kubernetes ``system:node`` role lets every node write events).

KubeEdge's always-allowed routes pass: operations ``response``, ``error``,
``keepalive``, ``upload``, ``prepull``, ``upgrade``, ``UpdateNodeActionStatus``;
source ``twin`` (device twin reports, ``membership/detail``); ``k8s/ca.crt``.
Everything else is refused; the session answers with an ``error`` message naming
the reason and counts it (``cloudhub_unauthorized_messages_total{reason}``).

Pure part: :func:`admission_check` returns :class:`Allowed`, :class:`Denied` or a
:class:`Lookup` that the caller resolves through a :class:`NodeObjectIndex`
(:func:`resolve`). The index is pluggable: the edgecontroller's informers will
implement it; :mod:`cloudcore.cloudhub.nodeindex` provides one that asks the API
server through ``kubeclient``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from beehive.constants import (
    MOD_TWIN,
    NULL_NAMESPACE,
    OP_DELETE,
    OP_ERROR,
    OP_INSERT,
    OP_KEEPALIVE,
    OP_RESPONSE,
    OP_UPLOAD,
    RESOURCE_K8S_CA,
)
from beehive.message import Message
from cloudcore.cloudhub.delivery import content_object
from kecommon.resources import ResourceError, parse_edge_resource

__all__ = [
    "Absent",
    "Allowed",
    "Decision",
    "Denied",
    "Lookup",
    "NodeObjectIndex",
    "admission_check",
    "not_found_content",
    "pod_references",
    "resolve",
]

LEASE_NAMESPACE: Final = "kube-node-lease"

_ALWAYS_ALLOWED_OPS: Final = frozenset(
    {OP_RESPONSE, OP_ERROR, OP_KEEPALIVE, OP_UPLOAD, "prepull", "upgrade", "UpdateNodeActionStatus"}
)
_OWN_NODE_TYPES: Final = frozenset({"node", "nodepatch", "nodestatus"})
_POD_TYPES: Final = frozenset({"pod", "podpatch", "podstatus"})

# reasons: also the label values of the unauthorized metric
REASON_OTHER_NODE: Final = "other_node"
REASON_OTHER_LEASE: Final = "other_lease"
REASON_POD_NOT_BOUND: Final = "pod_not_bound"
REASON_NOT_REFERENCED: Final = "not_referenced"
REASON_UNKNOWN_RESOURCE: Final = "resource_not_allowed"
REASON_MALFORMED: Final = "malformed_resource"
REASON_LOOKUP_FAILED: Final = "lookup_failed"

LookupKind = Literal["pod", "configmap", "secret", "serviceaccount"]


class NodeObjectIndex(Protocol):
    """Answers "does this object belong to that node?" for admission.

    Implementations must be cheap (an informer cache) or at least bounded; they
    may raise any exception, which denies the message with ``lookup_failed``.
    """

    async def pod_bound(self, node: str, namespace: str, name: str) -> bool:
        """The pod exists and ``spec.nodeName == node``."""
        ...

    async def pod_exists(self, namespace: str, name: str) -> bool:
        """The pod exists (bound anywhere or not at all)."""
        ...

    async def configmap_referenced(self, node: str, namespace: str, name: str) -> bool:
        """A pod bound to ``node`` uses the configmap (volume, projection, env)."""
        ...

    async def secret_referenced(self, node: str, namespace: str, name: str) -> bool:
        """A pod bound to ``node`` uses the secret (volume, projection, env,
        imagePullSecrets)."""
        ...

    async def serviceaccount_referenced(self, node: str, namespace: str, name: str) -> bool:
        """A pod bound to ``node`` runs as the service account."""
        ...


@dataclass(frozen=True, slots=True)
class Allowed:
    pass


@dataclass(frozen=True, slots=True)
class Denied:
    reason: str  # a metric label
    detail: str  # for the error reply and the log


@dataclass(frozen=True, slots=True)
class Lookup:
    """Admit only if the index says the object belongs to the node.

    ``absent_is_not_found``: when it does not belong, check whether it exists at
    all; if not, the answer is :class:`Absent` instead of :class:`Denied`.
    """

    kind: LookupKind
    namespace: str
    name: str
    absent_is_not_found: bool = False


@dataclass(frozen=True, slots=True)
class Absent:
    """The object does not exist: answer NotFound, forward nothing."""

    kind: LookupKind
    namespace: str
    name: str


Decision = Allowed | Denied | Lookup

ALLOWED: Final = Allowed()


def admission_check(node_id: str, msg: Message) -> Decision:
    """Decide what ``node_id`` may send, as far as it can be decided without I/O."""
    if msg.operation in _ALWAYS_ALLOWED_OPS or msg.source == MOD_TWIN:
        return ALLOWED
    if msg.resource == RESOURCE_K8S_CA:
        return ALLOWED
    try:
        path = parse_edge_resource(msg.resource)
    except ResourceError:
        return Denied(REASON_MALFORMED, f"resource {msg.resource!r} is not <ns>/<type>/<name>")
    ns, rtype, name = path.namespace, path.type, path.name
    if rtype in _OWN_NODE_TYPES:
        if name == node_id and (ns == NULL_NAMESPACE or rtype == "nodestatus"):
            return ALLOWED
        return Denied(REASON_OTHER_NODE, f"node {node_id} may not access node {name or '*'}")
    if rtype == "lease":
        if ns == LEASE_NAMESPACE and name == node_id:
            return ALLOWED
        return Denied(REASON_OTHER_LEASE, f"node {node_id} may not access lease {ns}/{name}")
    if rtype == "event":
        return ALLOWED
    if not name:
        return Denied(REASON_UNKNOWN_RESOURCE, f"node {node_id} may not list {ns}/{rtype}")
    if rtype in _POD_TYPES:
        if rtype == "pod" and msg.operation == OP_INSERT:
            # A mirror pod is new to the API server; it must name this node.
            spec = (content_object(msg) or {}).get("spec")
            bound = isinstance(spec, dict) and spec.get("nodeName") == node_id
            if bound:
                return ALLOWED
            return Denied(REASON_POD_NOT_BOUND, f"pod {ns}/{name} is not bound to node {node_id}")
        delete = rtype == "pod" and msg.operation == OP_DELETE
        return Lookup("pod", ns, name, absent_is_not_found=delete)
    if rtype == "configmap":
        return Lookup("configmap", ns, name)
    if rtype == "secret":
        return Lookup("secret", ns, name)
    if rtype == "serviceaccounttoken":
        return Lookup("serviceaccount", ns, name)
    return Denied(REASON_UNKNOWN_RESOURCE, f"node {node_id} may not access {msg.resource}")


async def resolve(
    node_id: str, decision: Decision, index: NodeObjectIndex
) -> Allowed | Denied | Absent:
    """Finish a :class:`Lookup` through ``index``; other decisions pass through."""
    if not isinstance(decision, Lookup):
        return decision
    ns, name = decision.namespace, decision.name
    try:
        if decision.kind == "pod":
            ok = await index.pod_bound(node_id, ns, name)
        elif decision.kind == "configmap":
            ok = await index.configmap_referenced(node_id, ns, name)
        elif decision.kind == "secret":
            ok = await index.secret_referenced(node_id, ns, name)
        else:
            ok = await index.serviceaccount_referenced(node_id, ns, name)
    except Exception as exc:
        return Denied(REASON_LOOKUP_FAILED, f"cannot check {decision.kind} {ns}/{name}: {exc}")
    if ok:
        return ALLOWED
    if decision.absent_is_not_found:
        try:
            exists = await index.pod_exists(ns, name)
        except Exception as exc:
            return Denied(REASON_LOOKUP_FAILED, f"cannot check {decision.kind} {ns}/{name}: {exc}")
        if not exists:
            return Absent(decision.kind, ns, name)
    if decision.kind == "pod":
        return Denied(REASON_POD_NOT_BOUND, f"pod {ns}/{name} is not bound to node {node_id}")
    return Denied(
        REASON_NOT_REFERENCED,
        f"{decision.kind} {ns}/{name} is not used by any pod bound to node {node_id}",
    )


_PLURALS: Final = {
    "pod": "pods",
    "configmap": "configmaps",
    "secret": "secrets",
    "serviceaccount": "serviceaccounts",
}


def not_found_content(absent: Absent) -> dict[str, Any]:
    """The reply content for :class:`Absent`: a Go ``*StatusError`` as encoding/json
    writes it (``{"ErrStatus": ...}``, TypeMeta omitted), the same NotFound the API
    server gives and edgecontroller passes on."""
    plural = _PLURALS[absent.kind]
    return {
        "ErrStatus": {
            "metadata": {},
            "status": "Failure",
            "message": f'{plural} "{absent.name}" not found',
            "reason": "NotFound",
            "details": {"name": absent.name, "kind": plural},
            "code": 404,
        }
    }


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
