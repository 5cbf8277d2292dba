"""The registry of served kinds: built-in core/v1, coordination.k8s.io/v1,
apiextensions.k8s.io/v1, and whatever CustomResourceDefinitions add.

Storage is keyed by group + plural (``ResourceInfo.key``), not by version: a CRD
serving several versions stores one object per name and answers every served
version with the same body (conversion strategy ``None``), as kube-apiserver does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Field selectors kube-apiserver accepts per kind (besides metadata.name/namespace).
POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Subresources served: "status", "binding" (pods), "token" (serviceaccounts).
    subresources: frozenset[str] = frozenset()
    # Built-in kinds take strategic merge patches; custom resources answer 415 to them.
    strategic: bool = True
    # Extra field-selector labels (metadata.name/namespace are always allowed).
    field_labels: tuple[str, ...] = ()
    # The CRD that serves this kind, if any.
    crd: str | None = None
    # Storage version of a CRD (objects answer every served version with it rewritten).
    storage_version: str = ""
    list_kind: str = ""
    # Printer columns of a CRD: (name, type, jsonPath).
    printer_columns: tuple[tuple[str, str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _core(
    plural: str,
    singular: str,
    kind: str,
    namespaced: bool,
    short: tuple[str, ...] = (),
    *,
    sub: Iterable[str] = (),
    fields: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
) -> ResourceInfo:
    return ResourceInfo(
        group="",
        version="v1",
        plural=plural,
        singular=singular,
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        subresources=frozenset(sub),
        field_labels=fields,
        categories=categories,
    )


BUILTINS: tuple[ResourceInfo, ...] = (
    _core("namespaces", "namespace", "Namespace", False, ("ns",), sub=("status",),
          fields=("status.phase",)),
    _core("nodes", "node", "Node", False, ("no",), sub=("status",),
          fields=("spec.unschedulable",)),
    _core("pods", "pod", "Pod", True, ("po",), sub=("status", "binding"), fields=POD_FIELDS,
          categories=("all",)),
    _core("configmaps", "configmap", "ConfigMap", True, ("cm",)),
    _core("secrets", "secret", "Secret", True, fields=("type",)),
    _core("serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",), sub=("token",)),
    _core("services", "service", "Service", True, ("svc",), sub=("status",),
          categories=("all",)),
    _core("endpoints", "endpoints", "Endpoints", True, ("ep",)),
    _core("events", "event", "Event", True, ("ev",), fields=EVENT_FIELDS),
    ResourceInfo(
        group="coordination.k8s.io",
        version="v1",
        plural="leases",
        singular="lease",
        kind="Lease",
        namespaced=True,
    ),
    # Stored and served, but no controller acts on them (no pods from a Deployment).
    *(
        ResourceInfo(group="apps", version="v1", plural=plural, singular=singular, kind=kind,
                     namespaced=True, short_names=short, subresources=frozenset({"status"}),
                     categories=("all",))
        for plural, singular, kind, short in (
            ("deployments", "deployment", "Deployment", ("deploy",)),
            ("daemonsets", "daemonset", "DaemonSet", ("ds",)),
            ("replicasets", "replicaset", "ReplicaSet", ("rs",)),
            ("statefulsets", "statefulset", "StatefulSet", ("sts",)),
        )
    ),
    *(
        ResourceInfo(group="rbac.authorization.k8s.io", version="v1", plural=plural,
                     singular=singular, kind=kind, namespaced=namespaced)
        for plural, singular, kind, namespaced in (
            ("roles", "role", "Role", True),
            ("rolebindings", "rolebinding", "RoleBinding", True),
            ("clusterroles", "clusterrole", "ClusterRole", False),
            ("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False),
        )
    ),
    ResourceInfo(
        group="apiextensions.k8s.io",
        version="v1",
        plural="customresourcedefinitions",
        singular="customresourcedefinition",
        kind="CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        subresources=frozenset({"status"}),
        categories=("api-extensions",),
    ),
)

# Which kinds live in which key, for namespace cascades and CRD cleanup.
NAMESPACES_KEY = "/namespaces"
NODES_KEY = "/nodes"
PODS_KEY = "/pods"
SERVICEACCOUNTS_KEY = "/serviceaccounts"
SERVICES_KEY = "/services"
SECRETS_KEY = "/secrets"
CRDS_KEY = "apiextensions.k8s.io/customresourcedefinitions"


@dataclass
class GroupEntry:
    name: str
    versions: list[str] = field(default_factory=list)  # preferred first


class Registry:
    """Served kinds, looked up by (group, version, plural)."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        self._crd_kinds: dict[str, list[ResourceInfo]] = {}
        for info in BUILTINS:
            self._by_gvr[(info.group, info.version, info.plural)] = info

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, plural))

    def by_key(self, key: str) -> ResourceInfo | None:
        for info in self._by_gvr.values():
            if info.key == key and (info.crd is None or info.version == info.storage_version):
                return info
        return None

    def all(self) -> list[ResourceInfo]:
        return list(self._by_gvr.values())

    def namespaced_keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for info in self._by_gvr.values():
            if info.namespaced:
                seen[info.key] = None
        return list(seen)

    def group_versions(self, group: str) -> list[str]:
        versions = {v for (g, v, _) in self._by_gvr if g == group}
        return sorted(versions, key=_version_priority)

    def groups(self) -> list[GroupEntry]:
        """Named groups (not core), sorted like kube-apiserver: built-ins first."""
        names: dict[str, None] = {}
        for info in BUILTINS:
            if info.group:
                names[info.group] = None
        for g, _, _ in sorted(self._by_gvr):
            if g:
                names[g] = None
        return [GroupEntry(name=n, versions=self.group_versions(n)) for n in names]

    def resources_in(self, group: str, version: str) -> list[ResourceInfo]:
        return sorted(
            (i for (g, v, _), i in self._by_gvr.items() if g == group and v == version),
            key=lambda i: i.plural,
        )

    # -- CRDs -------------------------------------------------------------------------

    def register_crd(self, crd: dict[str, Any]) -> list[ResourceInfo]:
        """Serve the kinds a CRD declares (replacing an earlier registration)."""
        name = crd["metadata"]["name"]
        self.unregister_crd(name)
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        versions = spec.get("versions") or []
        storage = next((v["name"] for v in versions if v.get("storage")), "")
        if not storage and versions:
            storage = versions[0]["name"]
        infos: list[ResourceInfo] = []
        for ver in versions:
            if not ver.get("served", True):
                continue
            sub = ver.get("subresources") or {}
            selectable = tuple(
                str(f.get("jsonPath", "")).lstrip(".") for f in ver.get("selectableFields") or []
            )
            columns = tuple(
                (str(c.get("name", "")), str(c.get("type", "string")), str(c.get("jsonPath", "")))
                for c in ver.get("additionalPrinterColumns") or []
            )
            info = ResourceInfo(
                group=group,
                version=ver["name"],
                plural=names.get("plural", ""),
                singular=names.get("singular") or str(names.get("kind", "")).lower(),
                kind=names.get("kind", ""),
                namespaced=namespaced,
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset({"status"} if "status" in sub else ()),
                strategic=False,
                field_labels=selectable,
                crd=name,
                storage_version=storage,
                list_kind=names.get("listKind") or "",
                printer_columns=columns,
            )
            self._by_gvr[(group, info.version, info.plural)] = info
            infos.append(info)
        self._crd_kinds[name] = infos
        return infos

    def unregister_crd(self, name: str) -> list[ResourceInfo]:
        infos = self._crd_kinds.pop(name, [])
        for info in infos:
            self._by_gvr.pop((info.group, info.version, info.plural), None)
        return infos


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """kube's version ordering: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {"alpha": 2, "beta": 1, None: 0}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)
