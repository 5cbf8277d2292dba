"""patching: JSON merge patch, JSON patch and strategic merge patch (pure)."""

from __future__ import annotations

import pytest

from devkube.patching import (
    PatchConflict,
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge,
)

POD = {
    "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {"name": "c1", "image": "i:1", "env": [{"name": "A", "value": "1"}],
             "ports": [{"containerPort": 80}]},
            {"name": "c2", "image": "i:1"},
        ],
        "volumes": [{"name": "v1", "emptyDir": {}}],
        "tolerations": [{"key": "t1"}],
    },
    "status": {"conditions": [{"type": "Ready", "status": "False"},
                              {"type": "PodScheduled", "status": "True"}]},
}


def test_merge_patch() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": [1]}) == {
        "a": 1, "b": {"d": 3, "e": 4}, "f": [1]}
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert merge_patch({"a": 1}, [1]) == [1]


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x", "k/e~y": 1}
    out = json_patch(doc, [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "remove", "path": "/a/b/1"},
        {"op": "replace", "path": "/c", "value": "y"},
        {"op": "copy", "from": "/c", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e"},
        {"op": "test", "path": "/e", "value": "y"},
        {"op": "remove", "path": "/k~1e~0y"},
    ])
    assert out == {"a": {"b": [0, 2, 3]}, "c": "y", "e": "y"}
    assert doc["a"]["b"] == [1, 2]  # the input is untouched


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/c", "value": "other"}],
    [{"op": "remove", "path": "/missing"}],
    [{"op": "replace", "path": "/missing", "value": 1}],
    [{"op": "add", "path": "/a/b/9", "value": 1}],
    [{"op": "add", "path": "/nope/deeper", "value": 1}],
])
def test_json_patch_conflicts(ops: list[dict[str, object]]) -> None:
    with pytest.raises(PatchConflict):
        json_patch({"a": {"b": []}, "c": "x"}, ops)


@pytest.mark.parametrize("ops", [
    {"op": "add"}, [{"path": "/a"}], [{"op": "frobnicate", "path": "/a"}],
    [{"op": "add", "path": "a", "value": 1}], [{"op": "add", "path": "/a"}],
])
def test_json_patch_malformed(ops: object) -> None:
    with pytest.raises(PatchError):
        json_patch({}, ops)


def test_strategic_merges_lists_by_key() -> None:
    out = strategic_merge(POD, {
        "spec": {
            "containers": [{"name": "c1", "env": [{"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80, "name": "http"}]},
                           {"name": "c3", "image": "i:3"}],
            "tolerations": [{"key": "t2"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        "metadata": {"finalizers": ["y"]},
    }, "Pod")
    c1, c2, c3 = out["spec"]["containers"]
    assert c1["image"] == "i:1" and c1["env"] == [{"name": "A", "value": "1"},
                                                  {"name": "B", "value": "2"}]
    assert c1["ports"] == [{"containerPort": 80, "name": "http"}]
    assert c2["name"] == "c2" and c3 == {"name": "c3", "image": "i:3"}
    assert out["spec"]["tolerations"] == [{"key": "t2"}]  # no merge key: replaced
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "PodScheduled", "status": "True"}]
    assert out["metadata"]["finalizers"] == ["x", "y"]
    assert POD["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]


def test_strategic_directives() -> None:
    out = strategic_merge(POD, {
        "spec": {"containers": [{"name": "c2", "$patch": "delete"}],
                 "volumes": [{"$patch": "replace"}, {"name": "v2"}]},
        "metadata": {"labels": {"$patch": "replace", "b": "2"},
                     "$deleteFromPrimitiveList/finalizers": ["x"]},
        "status": {"$patch": "delete"},
    }, "Pod")
    assert [c["name"] for c in out["spec"]["containers"]] == ["c1"]
    assert out["spec"]["volumes"] == [{"name": "v2"}]
    assert out["metadata"]["labels"] == {"b": "2"}
    assert out["metadata"]["finalizers"] == []
    assert "status" not in out


def test_strategic_set_element_order_and_retain_keys() -> None:
    out = strategic_merge(POD, {"spec": {
        "$setElementOrder/containers": [{"name": "c2"}, {"name": "c1"}],
        "containers": [{"name": "c1", "image": "i:2"}]}}, "Pod")
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [
        ("c2", "i:1"), ("c1", "i:2")]
    out = strategic_merge({"spec": {"strategy": {"type": "A", "rolling": {"x": 1}}}},
                          {"spec": {"strategy": {"$retainKeys": ["type"], "type": "B"}}}, "X")
    assert out == {"spec": {"strategy": {"type": "B"}}}


def test_strategic_errors() -> None:
    with pytest.raises(PatchError):
        strategic_merge(POD, [1], "Pod")
    with pytest.raises(PatchError):
        strategic_merge(POD, {"spec": {"containers": [{"image": "no-name"}]}}, "Pod")
    with pytest.raises(PatchError):
        strategic_merge(POD, {"spec": {"$patch": "explode"}}, "Pod")
    with pytest.raises(PatchError):
        strategic_merge(POD, {"$unknown": 1}, "Pod")


def test_node_status_merges_conditions_and_addresses() -> None:
    node = {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}
    out = strategic_merge(node, {"status": {
        "addresses": [{"type": "Hostname", "address": "n1"}],
        "conditions": [{"type": "MemoryPressure", "status": "False"}]}}, "Node")
    assert len(out["status"]["addresses"]) == 2 and len(out["status"]["conditions"]) == 2
