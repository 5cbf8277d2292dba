"""The synccontroller's pure decisions (protocol.md 4.4)."""

from __future__ import annotations

from typing import Any

import pytest

from cloudcore.synccontroller import reconcile
from cloudcore.synccontroller.reconcile import DeleteRecord, Nothing, SendToNode, SyncRecord


def record_obj(
    name: str = "edge-1.uid-1",
    *,
    namespace: str | None = "default",
    kind: str = "ConfigMap",
    api_version: str = "v1",
    object_name: str = "cm",
    rv: str | None = "5",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    obj: dict[str, Any] = {
        "metadata": meta,
        "spec": {"objectAPIVersion": api_version, "objectKind": kind, "objectName": object_name},
    }
    if rv is not None:
        obj["status"] = {"objectResourceVersion": rv}
    return obj


def current(uid: str = "uid-1", rv: str = "5", name: str = "cm") -> dict[str, Any]:
    # list items carry no apiVersion/kind
    return {"metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv}}


def test_parse_record() -> None:
    rec = reconcile.parse_record(record_obj("my.node.name.uid-9"))
    assert rec == SyncRecord(
        name="my.node.name.uid-9",
        namespace="default",
        node="my.node.name",
        uid="uid-9",
        api_version="v1",
        kind="ConfigMap",
        object_name="cm",
        recorded_rv="5",
    )
    assert rec.object_type == "configmap"
    cluster = reconcile.parse_record(record_obj(namespace=None, kind="Node", rv=None))
    assert cluster is not None
    assert cluster.namespace is None
    assert cluster.recorded_rv == "0"


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": {"name": "nodot"}, "spec": {"objectKind": "Pod", "objectName": "p"}},
        {"metadata": {}, "spec": {}},
        {"metadata": {"name": "n.u"}, "spec": {"objectName": "p"}},
        {"metadata": {"name": "n.u"}, "spec": {"objectKind": "Pod"}},
    ],
)
def test_parse_record_rejects_malformed(obj: dict[str, Any]) -> None:
    assert reconcile.parse_record(obj) is None


def rec(**kw: Any) -> SyncRecord:
    parsed = reconcile.parse_record(record_obj(**kw))
    assert parsed is not None
    return parsed


def test_up_to_date_does_nothing() -> None:
    assert reconcile.decide(rec(rv="5"), current(rv="5"), node_exists=True) == Nothing()
    # the edge is somehow ahead: nothing to send
    assert reconcile.decide(rec(rv="9"), current(rv="5"), node_exists=True) == Nothing()


def test_newer_object_is_sent_as_update() -> None:
    action = reconcile.decide(rec(rv="5"), current(rv="8"), node_exists=True)
    assert isinstance(action, SendToNode)
    msg = action.msg
    assert (msg.source, msg.group, msg.operation) == ("synccontroller", "resource", "update")
    assert msg.resource == "node/edge-1/default/configmap/cm"
    assert msg.resource_version == "8"
    assert msg.content["kind"] == "ConfigMap"
    assert msg.content["apiVersion"] == "v1"
    assert msg.content["metadata"]["uid"] == "uid-1"


def test_never_acked_record_sends_the_object() -> None:
    action = reconcile.decide(rec(rv="0"), current(rv="1"), node_exists=True)
    assert isinstance(action, SendToNode)
    assert action.msg.operation == "update"


def test_missing_object_is_sent_as_delete_with_only_identity() -> None:
    action = reconcile.decide(rec(), None, node_exists=True)
    assert isinstance(action, SendToNode)
    msg = action.msg
    assert msg.operation == "delete"
    assert msg.resource == "node/edge-1/default/configmap/cm"
    assert msg.content == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "uid": "uid-1", "namespace": "default"},
    }


def test_recreated_object_with_another_uid_is_a_delete_of_the_old_one() -> None:
    action = reconcile.decide(rec(), current(uid="uid-2", rv="99"), node_exists=True)
    assert isinstance(action, SendToNode)
    assert action.msg.operation == "delete"
    assert action.msg.content["metadata"]["uid"] == "uid-1"


def test_cluster_scoped_records_use_the_null_namespace() -> None:
    node_rec = rec(name="edge-1.nuid", namespace=None, kind="Node", object_name="edge-1", rv="1")
    node = {"metadata": {"name": "edge-1", "uid": "nuid", "resourceVersion": "2"}}
    action = reconcile.decide(node_rec, node, node_exists=True)
    assert isinstance(action, SendToNode)
    assert action.msg.resource == "node/edge-1/null/node/edge-1"
    gone = reconcile.decide(node_rec, None, node_exists=True)
    assert isinstance(gone, SendToNode)
    assert "namespace" not in gone.msg.content["metadata"]


def test_records_of_deleted_nodes_are_removed() -> None:
    r = rec()
    assert reconcile.decide(r, current(), node_exists=False) == DeleteRecord(r)
    assert reconcile.decide(r, None, node_exists=False) == DeleteRecord(r)
