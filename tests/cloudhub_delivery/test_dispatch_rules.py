"""Upstream dispatch rules (protocol.md 4.1) and node admission, both pure."""

from __future__ import annotations

from typing import Any

import pytest

from beehive.message import Message
from cloudcore.cloudhub import authorization, dispatch
from cloudcore.cloudhub.authorization import (
    Allowed,
    Denied,
    Lookup,
    admission_check,
    pod_references,
)
from cloudhub_delivery.helpers import NODE, up
from cloudhub_delivery.podspec import POD_SPEC

# -- dispatch ---------------------------------------------------------------------


def test_keepalive() -> None:
    msg = up("keepalive", "node", source="websocket", group="resource", content="ping")
    assert dispatch.decide(NODE, msg) == dispatch.Keepalive()


def test_response_is_an_ack_by_parent_id() -> None:
    msg = up("response", "default/pod/p", content="OK", parent="m-1")
    assert dispatch.decide(NODE, msg) == dispatch.Ack("m-1")


def test_error_is_only_logged() -> None:
    msg = up("error", "default/pod/p", content="boom", parent="m-1")
    assert dispatch.decide(NODE, msg) == dispatch.LogError(msg)


def test_upload_in_group_user_goes_to_router_prefixed() -> None:
    msg = up("upload", "SensorTopic", source="bus", group="user", content={"a": 1})
    action = dispatch.decide(NODE, msg)
    assert isinstance(action, dispatch.SendToModule)
    assert action.module == "router"
    assert action.msg.resource == f"node/{NODE}/SensorTopic"
    assert action.msg.msg_id == msg.msg_id
    assert msg.resource == "SensorTopic"  # the original is untouched


def test_upload_outside_group_user_is_published() -> None:
    msg = up("upload", "x/y/z", group="meta")
    assert isinstance(dispatch.decide(NODE, msg), dispatch.Publish)


@pytest.mark.parametrize("op", ["prepull", "upgrade", "UpdateNodeActionStatus"])
def test_task_operations_go_to_taskmanager(op: str) -> None:
    action = dispatch.decide(NODE, up(op, "task/x", source="taskmanager", group="taskmanager"))
    assert isinstance(action, dispatch.Publish)
    assert action.group == "taskmanager"


def test_k8s_ca_is_answered_by_cloudhub() -> None:
    msg = up("query", "k8s/ca.crt")
    assert dispatch.decide(NODE, msg) == dispatch.AnswerClusterCA(msg)
    reply = dispatch.ca_response(NODE, msg, "PEM")
    assert reply.parent_id == msg.msg_id
    assert (reply.source, reply.group, reply.operation) == ("cloudhub", "resource", "response")
    assert reply.resource == f"node/{NODE}/k8s/ca.crt"
    assert reply.content == "PEM"


@pytest.mark.parametrize(
    ("source", "group"),
    [
        ("twin", "devicecontroller"),
        ("metaserver", "dynamiccontroller"),
        ("edged", "edgecontroller"),
    ],
)
def test_everything_else_is_published_by_source(source: str, group: str) -> None:
    msg = up("update", "default/pod/p", source=source)
    action = dispatch.decide(NODE, msg)
    assert isinstance(action, dispatch.Publish)
    assert action.group == group
    assert action.msg.resource == f"node/{NODE}/default/pod/p"


def test_twin_reports_go_to_devicecontroller() -> None:
    msg = up("update", "device/default/d1/twin/edge_updated", source="twin", group="resource")
    action = dispatch.decide(NODE, msg)
    assert isinstance(action, dispatch.Publish)
    assert action.group == "devicecontroller"
    assert action.msg.resource == f"node/{NODE}/device/default/d1/twin/edge_updated"


# -- admission --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        up("keepalive", "node", source="websocket", group="resource"),
        up("response", "default/configmap/other", content="OK", parent="x"),
        up("error", "default/secret/other", content="e", parent="x"),
        up("upload", "topic", source="bus", group="user"),
        up("update", "device/default/d/twin/edge_updated", source="twin", group="resource"),
        up("get", "membership/detail", source="twin", group="resource"),
        up("query", "k8s/ca.crt"),
        up("insert", f"null/node/{NODE}"),
        up("query", f"null/node/{NODE}"),
        up("update", f"null/node/{NODE}"),
        up("patch", f"null/nodepatch/{NODE}", content="{}"),
        up("update", f"default/nodestatus/{NODE}"),
        up("query", f"kube-node-lease/lease/{NODE}"),
        up("insert", f"kube-node-lease/lease/{NODE}"),
        up("insert", "default/event/e1"),
        up("insert", "default/pod/mirror", content={"spec": {"nodeName": NODE}}),
    ],
)
def test_allowed_without_lookup(msg: Message) -> None:
    assert admission_check(NODE, msg) == Allowed()


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (up("insert", "null/node/edge-2"), authorization.REASON_OTHER_NODE),
        (up("patch", "null/nodepatch/edge-2", content="{}"), authorization.REASON_OTHER_NODE),
        (up("update", "null/nodestatus/edge-2"), authorization.REASON_OTHER_NODE),
        (up("update", f"default/node/{NODE}"), authorization.REASON_OTHER_NODE),
        (up("query", "kube-node-lease/lease/edge-2"), authorization.REASON_OTHER_LEASE),
        (up("query", f"default/lease/{NODE}"), authorization.REASON_OTHER_LEASE),
        (up("query", "default/configmap"), authorization.REASON_UNKNOWN_RESOURCE),
        (up("query", "kube-system/service/kube-dns"), authorization.REASON_UNKNOWN_RESOURCE),
        (up("query", "nonsense"), authorization.REASON_MALFORMED),
        (up("get", "membership/detail", source="edged"), authorization.REASON_UNKNOWN_RESOURCE),
        (
            up("insert", "default/pod/mirror", content={"spec": {"nodeName": "edge-2"}}),
            authorization.REASON_POD_NOT_BOUND,
        ),
        (up("insert", "default/pod/mirror", content="garbage"), authorization.REASON_POD_NOT_BOUND),
    ],
)
def test_denied_without_lookup(msg: Message, reason: str) -> None:
    decision = admission_check(NODE, msg)
    assert isinstance(decision, Denied)
    assert decision.reason == reason
    assert decision.detail


@pytest.mark.parametrize(
    ("msg", "lookup"),
    [
        (up("patch", "default/podpatch/p", content="{}"), Lookup("pod", "default", "p")),
        (up("update", "default/podstatus/p"), Lookup("pod", "default", "p")),
        (
            up("delete", "default/pod/p", content={}),
            Lookup("pod", "default", "p", absent_is_not_found=True),
        ),
        (up("query", "default/configmap/c"), Lookup("configmap", "default", "c")),
        (up("query", "ns1/secret/s"), Lookup("secret", "ns1", "s")),
        (up("query", "ns1/serviceaccounttoken/sa"), Lookup("serviceaccount", "ns1", "sa")),
    ],
)
def test_lookups(msg: Message, lookup: Lookup) -> None:
    assert admission_check(NODE, msg) == lookup


class Index:
    """A NodeObjectIndex over plain sets, for the resolve() rules."""

    def __init__(self, **owned: set[tuple[str, str]]) -> None:
        self.owned = owned
        self.fail = False
        self.elsewhere: set[tuple[str, str]] = set()  # pods bound to another node

    async def _check(self, kind: str, node: str, ns: str, name: str) -> bool:
        if self.fail:
            raise RuntimeError("API server unreachable")
        return node == NODE and (ns, name) in self.owned.get(kind, set())

    async def pod_bound(self, node: str, namespace: str, name: str) -> bool:
        return await self._check("pod", node, namespace, name)

    async def pod_exists(self, namespace: str, name: str) -> bool:
        if self.fail:
            raise RuntimeError("API server unreachable")
        key = (namespace, name)
        return key in self.owned.get("pod", set()) or key in self.elsewhere

    async def configmap_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._check("configmap", node, namespace, name)

    async def secret_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._check("secret", node, namespace, name)

    async def serviceaccount_referenced(self, node: str, namespace: str, name: str) -> bool:
        return await self._check("serviceaccount", node, namespace, name)


@pytest.mark.parametrize("kind", ["pod", "configmap", "secret", "serviceaccount"])
async def test_resolve(kind: Any) -> None:
    index = Index(**{kind: {("default", "mine")}})
    assert await authorization.resolve(NODE, Lookup(kind, "default", "mine"), index) == Allowed()
    denied = await authorization.resolve(NODE, Lookup(kind, "default", "theirs"), index)
    assert isinstance(denied, Denied)
    expected = "pod_not_bound" if kind == "pod" else "not_referenced"
    assert denied.reason == expected
    assert "theirs" in denied.detail
    index.fail = True
    failed = await authorization.resolve(NODE, Lookup(kind, "default", "mine"), index)
    assert isinstance(failed, Denied)
    assert failed.reason == authorization.REASON_LOOKUP_FAILED
    assert "unreachable" in failed.detail


async def test_delete_of_a_missing_pod_is_absent_not_denied() -> None:
    """edged's delete can race the API removing the pod: a pod that does not exist is
    answered NotFound; one bound to another node is still refused, as are other
    operations on a missing pod."""
    index = Index(pod={("default", "mine")})
    index.elsewhere.add(("default", "theirs"))
    delete = Lookup("pod", "default", "gone", absent_is_not_found=True)
    absent = await authorization.resolve(NODE, delete, index)
    assert absent == authorization.Absent("pod", "default", "gone")
    assert authorization.not_found_content(absent) == {
        "ErrStatus": {
            "metadata": {},
            "status": "Failure",
            "message": 'pods "gone" not found',
            "reason": "NotFound",
            "details": {"name": "gone", "kind": "pods"},
            "code": 404,
        }
    }
    theirs = Lookup("pod", "default", "theirs", absent_is_not_found=True)
    denied = await authorization.resolve(NODE, theirs, index)
    assert isinstance(denied, Denied) and denied.reason == "pod_not_bound"
    patch = await authorization.resolve(NODE, Lookup("pod", "default", "gone"), index)
    assert isinstance(patch, Denied) and patch.reason == "pod_not_bound"
    mine = Lookup("pod", "default", "mine", absent_is_not_found=True)
    assert await authorization.resolve(NODE, mine, index) == Allowed()
    index.fail = True
    failed = await authorization.resolve(NODE, delete, index)
    assert isinstance(failed, Denied) and failed.reason == authorization.REASON_LOOKUP_FAILED


async def test_resolve_passes_final_decisions_through() -> None:
    index = Index()
    assert await authorization.resolve(NODE, Allowed(), index) == Allowed()
    denied = Denied("x", "y")
    assert await authorization.resolve(NODE, denied, index) is denied


def test_pod_references() -> None:
    refs = pod_references({"spec": POD_SPEC})
    assert refs == {
        "configmap": {"cm-vol", "cm-proj", "cm-env", "cm-envfrom"},
        "secret": {"pull", "sec-vol", "sec-proj", "sec-env", "sec-envfrom"},
        "serviceaccount": {"runner"},
    }
    assert pod_references({"spec": {}})["serviceaccount"] == {"default"}
    assert pod_references({}) == {
        "configmap": set(),
        "secret": set(),
        "serviceaccount": {"default"},
    }
