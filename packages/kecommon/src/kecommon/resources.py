"""Resource paths: build, split, prefix and trim them as KubeEdge does.

Inside cloudcore a resource is ``node/<node>/<namespace>/<type>[/<name>]``
(``cloud/pkg/common/messagelayer/util.go`` BuildResource), or for device-style
resources ``node/<node>/<type>[/<id>]``. On the wire the ``node/<node>/``
prefix is absent: cloudhub trims it downstream and adds it upstream from the
connection's ``node_id`` header (protocol.md section 2). Cluster-scoped
objects use the namespace ``null``. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from beehive.constants import NULL_NAMESPACE

__all__ = [
    "ResourceError",
    "ResourcePath",
    "add_node_prefix",
    "build_device_resource",
    "build_resource",
    "compare_resource_versions",
    "node_of",
    "parse_edge_resource",
    "parse_node_resource",
    "trim_node_prefix",
]

NODE_PREFIX = "node"


class ResourceError(ValueError):
    """A resource string does not have the expected shape."""


@dataclass(frozen=True, slots=True)
class ResourcePath:
    """A namespaced resource: ``<namespace>/<type>[/<name>]``."""

    namespace: str
    type: str
    name: str = ""

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.type}"
        return f"{base}/{self.name}" if self.name else base


def build_resource(node: str, namespace: str, resource_type: str, name: str = "") -> str:
    """``node/<node>/<namespace>/<type>[/<name>]``; ``null`` for no namespace."""
    if not node or not resource_type:
        raise ResourceError("node and resource type are required")
    ns = namespace or NULL_NAMESPACE
    res = f"{NODE_PREFIX}/{node}/{ns}/{resource_type}"
    return f"{res}/{name}" if name else res


def build_device_resource(node: str, resource_type: str, resource_id: str = "") -> str:
    """``node/<node>/<type>[/<id>]`` for membership, twin and the like."""
    if not node or not resource_type:
        raise ResourceError("node and resource type are required")
    res = f"{NODE_PREFIX}/{node}/{resource_type}"
    return f"{res}/{resource_id}" if resource_id else res


def trim_node_prefix(resource: str) -> str:
    """Drop ``node/<node>/`` as cloudhub does before writing to the edge.

    Anything not starting with ``node/`` is returned unchanged (KubeEdge's
    TrimMessage only trims resources that start with ``node``).
    """
    parts = resource.split("/", 2)
    if len(parts) >= 3 and parts[0] == NODE_PREFIX:
        return parts[2]
    return resource


def add_node_prefix(node: str, resource: str) -> str:
    """``node/<node>/<resource>``: what cloudhub does to every upstream resource."""
    return f"{NODE_PREFIX}/{node}/{resource}"


def node_of(resource: str) -> str:
    """The node id of a ``node/<node>/...`` resource."""
    parts = resource.split("/", 2)
    if len(parts) < 2 or parts[0] != NODE_PREFIX or not parts[1]:
        raise ResourceError(f"{resource!r} does not start with node/<node>/")
    return parts[1]


def parse_node_resource(resource: str) -> tuple[str, ResourcePath]:
    """Split ``node/<node>/<ns>/<type>[/<name>]`` into the node and the path."""
    parts = resource.split("/")
    if len(parts) < 4 or parts[0] != NODE_PREFIX or not parts[1]:
        raise ResourceError(f"{resource!r} is not node/<node>/<ns>/<type>[/<name>]")
    return parts[1], _path(parts[2:], resource)


def parse_edge_resource(resource: str) -> ResourcePath:
    """Split a wire resource ``<ns>/<type>[/<name>]`` (ParseResourceEdge).

    A name may itself contain slashes (KubeEdge keeps everything after the
    type as the name).
    """
    return _path(resource.split("/"), resource)


def _path(parts: list[str], original: str) -> ResourcePath:
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ResourceError(f"{original!r} is not <ns>/<type>[/<name>]")
    name = "/".join(parts[2:])
    return ResourcePath(namespace=parts[0], type=parts[1], name=name)


def _rv(value: str) -> int | None:
    try:
        rv = int(value)
    except ValueError:
        return None
    return rv if rv >= 0 else None


def compare_resource_versions(a: str, b: str) -> int | None:
    """-1/0/1 comparing resourceVersions as unsigned integers (KubeEdge's
    CompareResourceVersion); None if either is not such a number.

    Shared by the cloud (which version an edge may still be sent) and the edge
    (which version its store keeps), so both judge versions alike.
    """
    ra, rb = _rv(a), _rv(b)
    if ra is None or rb is None:
        return None
    return (ra > rb) - (ra < rb)
