"""edged's requests through MetaClient -> metamanager -> edgehub -> cloud, golden.

Every request KubeEdge's edge made in the pods capture is made again through
our MetaClient; the cloud peer answers with the captured answer. What reaches
the cloud must equal KubeEdge's request (route, header keys, content), the
edge must ack exactly the answers KubeEdge acked, and MetaClient must turn
each answer shape into the object or the error.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from beehive import codec
from beehive.message import Message
from edgecore.metaclient import (
    MetaAlreadyExists,
    MetaClient,
    MetaNotFound,
    MetaTimeout,
    MetaUnavailable,
)
from edgecore.metamanager import shapes
from fixtures.minicloud import (
    EdgeRunner,
    MiniCloud,
    capture_lines,
    edge_settings,
    shape,
    wait_until,
)


def _exchanges() -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]]:
    lines = [line for line in capture_lines() if line["dir"] != "upgrade"]
    by_parent = {
        line["frame"]["header"].get("parent_msg_id"): line["frame"]
        for line in lines
        if line["frame"]["header"].get("parent_msg_id")
    }
    out = []
    for line in lines:
        f = line["frame"]
        if line["dir"] == "edge->cloud" and f["route"].get("group") == "meta":
            resp = by_parent[f["header"]["msg_id"]]
            ack = by_parent.get(resp["header"]["msg_id"])
            out.append((f, resp, ack))
    return out


async def _call(client: MetaClient, request: dict[str, Any]) -> Any:
    op, res = request["route"]["operation"], request["route"]["resource"]
    ns, kind, name = res.split("/", 2)
    content = request["content"]
    if kind == "lease":
        fn = {
            "query": lambda: client.get_lease(name),
            "insert": lambda: client.create_lease(content),
            "update": lambda: client.update_lease(content),
        }[op]
    elif kind == "node":
        fn = lambda: client.create_node(content)  # noqa: E731
    elif kind == "nodepatch":
        fn = lambda: client.patch_node_status(name, json.loads(content))  # noqa: E731
    elif kind == "podpatch":
        fn = lambda: client.patch_pod_status(ns, name, json.loads(content))  # noqa: E731
    elif kind == "configmap":
        fn = lambda: client.get_configmap(ns, name)  # noqa: E731
    elif kind == "secret":
        fn = lambda: client.get_secret(ns, name)  # noqa: E731
    elif kind == "serviceaccounttoken":
        fn = lambda: client.get_service_account_token(ns, name, content)  # noqa: E731
    elif kind == "pod" and op == "delete":
        fn = lambda: client.delete_pod(ns, name, content)  # noqa: E731
    else:  # pragma: no cover - a capture with a request we do not know
        raise AssertionError(f"unknown request {op} {res}")
    return await fn()


async def test_requests_answers_and_acks_match_the_capture(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    exchanges = _exchanges()
    answers: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for req, resp, _ in exchanges:
        answers[(req["route"]["operation"], req["route"]["resource"])].append(resp)

    def responder(msg: Message) -> Message | None:
        if msg.group != "meta":
            return None
        captured = answers[(msg.operation, msg.resource)].pop(0)
        out = codec.decode_obj(captured)
        out.header.parent_msg_id = msg.msg_id
        return out

    minicloud.responder = responder
    settings = edge_settings(minicloud, tmp_path, node="capture-edge")
    async with EdgeRunner(settings, tmp_path / "edge.db") as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        client = MetaClient(edge.ctx, timeout=5)
        for req, resp, captured_ack in exchanges:
            start = len(minicloud.received)
            err = resp["content"].get("Err") if isinstance(resp["content"], dict) else None
            if err:
                with pytest.raises(MetaNotFound) as info:
                    await _call(client, req)
                assert info.value.code == 404
            else:
                result = await _call(client, req)
                content = resp["content"]
                expected = (
                    content.get("Object")
                    if "Object" in content
                    else (None if content == "OK" else content)
                )
                assert result == expected
            sent = await minicloud.wait_message(lambda m: m.group == "meta", start=start)
            assert shape(codec.to_obj(sent)) == shape(req)
            assert sent.content == req["content"]
            if captured_ack is None:
                continue
            ack = await minicloud.wait_message(
                lambda m: m.operation == "response" and m.group == "resource", start=start
            )
            assert ack.parent_id != "" and shape(codec.to_obj(ack)) == shape(captured_ack)
        # no ack for answers KubeEdge did not ack (patches, delete)
        acks = [m for m in minicloud.received if m.operation == "response"]
        assert len(acks) == sum(1 for *_, a in exchanges if a is not None)
        # answers worth keeping are in the store
        store = edge.meta.store
        assert (await store.get("default/configmap/cap-cm"))["metadata"]["name"] == "cap-cm"
        lease = await store.get("kube-node-lease/lease/capture-edge")
        assert lease["metadata"]["name"] == "capture-edge"
        assert await store.get("default/secret/cap-secret") is not None


async def test_configmap_is_answered_from_the_store_second_time(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    cm = {"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "d", "uid": "u"}}
    minicloud.responder = lambda m: (
        Message.new(
            source="edgecontroller",
            group="resource",
            operation="response",
            resource=m.resource,
            content=cm,
            parent_msg_id=m.msg_id,
            resource_version="7",
        )
        if m.group == "meta"
        else None
    )
    async with EdgeRunner(edge_settings(minicloud, tmp_path), tmp_path / "e.db") as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        client = MetaClient(edge.ctx, timeout=5)
        assert await client.get_configmap("d", "a") == cm
        assert await client.get_configmap("d", "a") == cm
    assert sum(m.group == "meta" for m in minicloud.received) == 1


async def test_an_answer_older_than_the_store_does_not_replace_it(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    """The cloud pushed version 9 while the answer to a query (read at
    version 5) was on its way: the store keeps 9 and the requester gets 9."""

    def cm(rv: str, value: str) -> dict[str, Any]:
        return {
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "d", "uid": "u", "resourceVersion": rv},
            "data": {"v": value},
        }

    minicloud.responder = lambda m: None  # the test answers by hand
    async with EdgeRunner(edge_settings(minicloud, tmp_path), tmp_path / "e.db") as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        client = MetaClient(edge.ctx, timeout=10)
        pending = asyncio.create_task(client.get_configmap("d", "a"))
        query = await minicloud.wait_message(
            lambda m: m.operation == "query" and m.resource == "d/configmap/a"
        )
        push = Message.new(
            source="edgecontroller", group="resource", operation="update",
            resource="d/configmap/a", content=cm("9", "new"), resource_version="9",
        )
        await minicloud.send(push)
        await minicloud.wait_message(lambda m: m.parent_id == push.msg_id)  # stored, acked
        await minicloud.send(
            Message.new(
                source="edgecontroller", group="resource", operation="response",
                resource="d/configmap/a", content=cm("5", "old"),
                parent_msg_id=query.msg_id, resource_version="5",
            )
        )
        assert (await asyncio.wait_for(pending, 10))["data"] == {"v": "new"}
        assert (await client.get_configmap("d", "a"))["data"] == {"v": "new"}
    # a newer answer still replaces an older stored version
    assert shapes.is_older(cm("5", "x"), cm("9", "y"))
    assert not shapes.is_older(cm("9", "x"), cm("5", "y"))
    other = cm("5", "x")
    other["metadata"]["uid"] = "another"
    assert not shapes.is_older(other, cm("9", "y"))  # another object: not comparable


async def test_not_found_and_already_exists(minicloud: MiniCloud, tmp_path: Path) -> None:
    def status(code: int, reason: str) -> dict[str, Any]:
        return {
            "ErrStatus": {
                "metadata": {},
                "status": "Failure",
                "message": reason,
                "reason": reason,
                "code": code,
            }
        }

    def responder(m: Message) -> Message | None:
        if m.group != "meta":
            return None
        if m.resource.startswith("null/node"):
            content: Any = {"Object": None, "Err": status(409, "AlreadyExists")}
        else:
            content = status(404, "NotFound")
        return Message.new(
            source="edgecontroller",
            group="resource",
            operation="response",
            resource=m.resource,
            content=content,
            parent_msg_id=m.msg_id,
        )

    minicloud.responder = responder
    async with EdgeRunner(edge_settings(minicloud, tmp_path), tmp_path / "e.db") as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        client = MetaClient(edge.ctx, timeout=5)
        with pytest.raises(MetaAlreadyExists):
            await client.create_node({"metadata": {"name": "edge-1"}})
        with pytest.raises(MetaNotFound):
            await client.get_secret("d", "missing")
        # a delete that finds the pod already gone did what it asked for
        assert await client.delete_pod("d", "gone", {"gracePeriodSeconds": 0}) is None
        assert any(
            m.operation == "delete" and m.resource == "d/pod/gone" for m in minicloud.received
        )
        # the refusal is not stored
        assert await edge.meta.store.get("d/secret/missing") is None


async def test_no_edgehub_means_unavailable(tmp_path: Path, minicloud: MiniCloud) -> None:
    await minicloud.stop_ws()
    async with EdgeRunner(edge_settings(minicloud, tmp_path), tmp_path / "e.db") as edge:
        client = MetaClient(edge.ctx, timeout=5)
        with pytest.raises(MetaUnavailable):
            await client.get_lease("edge-1")


async def test_a_stale_connection_flag_does_not_block_requests(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    lease = {"metadata": {"name": "edge-1", "namespace": "kube-node-lease"}}
    minicloud.responder = lambda m: (
        Message.new(
            source="edgecontroller",
            group="resource",
            operation="response",
            resource=m.resource,
            content={"Object": lease, "Err": None},
            parent_msg_id=m.msg_id,
        )
        if m.group == "meta"
        else None
    )
    async with EdgeRunner(edge_settings(minicloud, tmp_path), tmp_path / "e.db") as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        edge.meta.cloud_connected = False  # as after a metamanager restart
        assert await MetaClient(edge.ctx, timeout=5).get_lease("edge-1") == lease


async def test_silent_cloud_times_out_and_queries_fall_back_to_the_store(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    lease = {"metadata": {"name": "edge-1", "namespace": "kube-node-lease"}}
    answering = True

    def responder(m: Message) -> Message | None:
        if m.group != "meta" or not answering:
            return None
        return Message.new(
            source="edgecontroller",
            group="resource",
            operation="response",
            resource=m.resource,
            content={"Object": lease, "Err": None},
            parent_msg_id=m.msg_id,
        )

    minicloud.responder = responder
    async with EdgeRunner(
        edge_settings(minicloud, tmp_path), tmp_path / "e.db", remote_timeout=0.5
    ) as edge:
        await wait_until(lambda: edge.meta.cloud_connected)
        client = MetaClient(edge.ctx, timeout=5)
        assert await client.get_lease("edge-1") == lease
        answering = False
        assert await client.get_lease("edge-1") == lease  # from the store after 0.5 s
        with pytest.raises(MetaTimeout):
            await client.update_lease(lease)
