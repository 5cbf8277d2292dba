"""kecommon.resources: building, splitting, prefixing and trimming resource paths."""

from __future__ import annotations

import pytest

from kecommon import resources
from kecommon.resources import (
    ResourceError,
    ResourcePath,
    add_node_prefix,
    build_device_resource,
    build_resource,
    node_of,
    parse_edge_resource,
    parse_node_resource,
    trim_node_prefix,
)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("edge1", "default", "pod", "web"), "node/edge1/default/pod/web"),
        (("edge1", "default", "configmap"), "node/edge1/default/configmap"),
        (("edge1", "", "node", "edge1"), "node/edge1/null/node/edge1"),
        (("edge1", "null", "node", "edge1"), "node/edge1/null/node/edge1"),
        (("edge1", "kube-node-lease", "lease", "edge1"), "node/edge1/kube-node-lease/lease/edge1"),
    ],
)
def test_build_resource(args: tuple[str, ...], expected: str) -> None:
    assert build_resource(*args) == expected


@pytest.mark.parametrize("args", [("", "default", "pod"), ("edge1", "default", "")])
def test_build_resource_needs_node_and_type(args: tuple[str, ...]) -> None:
    with pytest.raises(ResourceError):
        build_resource(*args)


def test_build_device_resource() -> None:
    assert build_device_resource("edge1", "membership") == "node/edge1/membership"
    assert build_device_resource("edge1", "twin", "t1") == "node/edge1/twin/t1"
    with pytest.raises(ResourceError):
        build_device_resource("", "twin")
    with pytest.raises(ResourceError):
        build_device_resource("edge1", "")


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("node/edge1/default/pod/web", "default/pod/web"),
        ("node/edge1/null/node/edge1", "null/node/edge1"),
        ("node/edge1/membership", "membership"),
        ("node/edge1/twin", "twin"),
        ("node/edge1/k8s/ca.crt", "k8s/ca.crt"),
        # not node-prefixed: unchanged, as KubeEdge's TrimMessage
        ("default/pod/web", "default/pod/web"),
        ("membership", "membership"),
        ("node", "node"),
        ("node/edge1", "node/edge1"),
        ("nodes/edge1/default/pod/x", "nodes/edge1/default/pod/x"),
    ],
)
def test_trim_node_prefix(resource: str, expected: str) -> None:
    assert trim_node_prefix(resource) == expected


@pytest.mark.parametrize(
    "wire",
    [
        "default/pod/web",
        "null/nodepatch/e",
        "membership/detail",
        "node",
        "device/default/t1/twin/edge_updated",
    ],
)
def test_add_then_trim_is_identity(wire: str) -> None:
    prefixed = add_node_prefix("edge1", wire)
    assert prefixed == f"node/edge1/{wire}"
    assert node_of(prefixed) == "edge1"
    assert trim_node_prefix(prefixed) == wire


@pytest.mark.parametrize("bad", ["", "node", "node//default/pod", "pods/edge1/x", "default/pod/x"])
def test_node_of_refuses_unprefixed(bad: str) -> None:
    with pytest.raises(ResourceError):
        node_of(bad)


def test_parse_node_resource() -> None:
    assert parse_node_resource("node/edge1/default/pod/web") == (
        "edge1",
        ResourcePath("default", "pod", "web"),
    )
    assert parse_node_resource("node/edge1/default/configmap") == (
        "edge1",
        ResourcePath("default", "configmap", ""),
    )
    node, path = parse_node_resource("node/e/null/node/e")
    assert (node, path.namespace, path.type, path.name) == ("e", "null", "node", "e")


@pytest.mark.parametrize(
    "bad",
    [
        "node/edge1/default",
        "node/edge1",
        "node//default/pod/x",
        "x/edge1/default/pod",
        "node/edge1//pod/x",
        "node/edge1/default//x",
    ],
)
def test_parse_node_resource_refuses(bad: str) -> None:
    with pytest.raises(ResourceError):
        parse_node_resource(bad)


def test_parse_edge_resource() -> None:
    assert parse_edge_resource("default/pod/web") == ResourcePath("default", "pod", "web")
    assert parse_edge_resource("default/pod") == ResourcePath("default", "pod")
    assert parse_edge_resource("kube-node-lease/lease/e1").type == "lease"
    # everything after the type is the name, slashes included
    assert parse_edge_resource("default/serviceaccounttoken/sa/extra").name == "sa/extra"


@pytest.mark.parametrize("bad", ["", "default", "/pod/x", "default//x", "node"])
def test_parse_edge_resource_refuses(bad: str) -> None:
    with pytest.raises(ResourceError):
        parse_edge_resource(bad)


def test_resource_path_str_round_trips() -> None:
    for text in ("default/pod/web", "default/pod", "null/node/e"):
        assert str(parse_edge_resource(text)) == text


def test_resource_error_is_a_value_error() -> None:
    assert issubclass(ResourceError, ValueError)


def test_compare_resource_versions_as_unsigned_integers() -> None:
    assert resources.compare_resource_versions("9", "10") == -1
    assert resources.compare_resource_versions("10", "10") == 0
    assert resources.compare_resource_versions("100", "99") == 1
    assert resources.compare_resource_versions("abc", "1") is None
    assert resources.compare_resource_versions("-1", "1") is None
