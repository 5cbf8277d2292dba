"""Which API resource a call is about: group, version, plural, kind, scope.

``ResourceRef`` is all the client needs to build a URL; the constants below are
the resources cloudcore uses (the KubeEdge CRDs included).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CLUSTEROBJECTSYNCS",
    "CLUSTERROLEBINDINGS",
    "CLUSTERROLES",
    "CONFIGMAPS",
    "CRDS",
    "DEPLOYMENTS",
    "DEVICEMODELS",
    "DEVICES",
    "DEVICESTATUSES",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "OBJECTSYNCS",
    "PODS",
    "SECRETS",
    "SERVICEACCOUNTS",
    "SERVICES",
    "ResourceRef",
    "ref_for",
]


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """One API resource type. ``group`` is ``""`` for the core API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        """``v1`` for core, ``<group>/<version>`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self,
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The URL path of the collection, an object or its subresource.

        Raises:
            ValueError: a namespace is given for a cluster-scoped resource, or a
                subresource without a name.
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            if not self.namespaced:
                raise ValueError(f"{self.plural} is cluster-scoped: no namespace allowed")
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            if not name:
                raise ValueError("a subresource needs an object name")
            base += f"/{subresource}"
        return base


NODES = ResourceRef("", "v1", "nodes", "Node", False)
PODS = ResourceRef("", "v1", "pods", "Pod", True)
CONFIGMAPS = ResourceRef("", "v1", "configmaps", "ConfigMap", True)
SECRETS = ResourceRef("", "v1", "secrets", "Secret", True)
NAMESPACES = ResourceRef("", "v1", "namespaces", "Namespace", False)
SERVICEACCOUNTS = ResourceRef("", "v1", "serviceaccounts", "ServiceAccount", True)
EVENTS = ResourceRef("", "v1", "events", "Event", True)
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases", "Lease", True)
CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)
OBJECTSYNCS = ResourceRef(
    "reliablesyncs.kubeedge.io", "v1alpha1", "objectsyncs", "ObjectSync", True
)
CLUSTEROBJECTSYNCS = ResourceRef(
    "reliablesyncs.kubeedge.io", "v1alpha1", "clusterobjectsyncs", "ClusterObjectSync", False
)
DEVICES = ResourceRef("devices.kubeedge.io", "v1beta1", "devices", "Device", True)
DEVICEMODELS = ResourceRef("devices.kubeedge.io", "v1beta1", "devicemodels", "DeviceModel", True)
DEVICESTATUSES = ResourceRef(
    "devices.kubeedge.io", "v1beta1", "devicestatuses", "DeviceStatus", True
)
SERVICES = ResourceRef("", "v1", "services", "Service", True)
DEPLOYMENTS = ResourceRef("apps", "v1", "deployments", "Deployment", True)
CLUSTERROLES = ResourceRef(
    "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False
)
CLUSTERROLEBINDINGS = ResourceRef(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
)
ROLES = ResourceRef("rbac.authorization.k8s.io", "v1", "roles", "Role", True)
ROLEBINDINGS = ResourceRef("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True)


def ref_for(api_version: str, kind: str) -> ResourceRef:
    """The resource of a manifest's ``apiVersion``/``kind`` among the known ones.

    Raises:
        KeyError: a kind this client has no constant for.
    """
    for ref in _KNOWN:
        if ref.api_version == api_version and ref.kind == kind:
            return ref
    raise KeyError(f"{api_version} {kind}")


_KNOWN: tuple[ResourceRef, ...] = (
    NODES, PODS, CONFIGMAPS, SECRETS, NAMESPACES, SERVICEACCOUNTS, EVENTS, LEASES, CRDS,
    OBJECTSYNCS, CLUSTEROBJECTSYNCS, DEVICES, DEVICEMODELS, DEVICESTATUSES,
    SERVICES, DEPLOYMENTS, CLUSTERROLES, CLUSTERROLEBINDINGS, ROLES, ROLEBINDINGS,
)
