"""The session manager over in-memory connections: lifecycle, delivery, dispatch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from beehive.context import Context
from beehive.message import Message
from cloudcore.cloudhub import handler
from cloudcore.cloudhub.delivery import DeliverySettings
from cloudcore.cloudhub.handler import ConnectionHandler, NodeConnection
from cloudcore.cloudhub.sessions import SessionManager, SessionSettings
from cloudhub_delivery.helpers import NODE, down, up
from cloudhub_delivery.memconn import MemConnection, MemEdge, wait_until


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Recorder:
    """A SyncRecorder in memory: what ObjectSync would hold."""

    recorded: dict[str, str] = field(default_factory=dict)  # uid -> RV
    lookups: list[str] = field(default_factory=list)

    async def recorded_version(self, node: str, msg: Message) -> str | None:
        uid = msg.content["metadata"]["uid"]
        self.lookups.append(uid)
        return self.recorded.setdefault(uid, "0")

    async def record_ack(self, node: str, msg: Message) -> None:
        uid = msg.content["metadata"]["uid"]
        if msg.operation == "delete":
            self.recorded.pop(uid, None)
        else:
            self.recorded[uid] = msg.resource_version


class Hub:
    def __init__(self, manager: SessionManager, ctx: Context) -> None:
        self.manager = manager
        self.ctx = ctx

    async def send(self, msg: Message) -> None:
        await self.ctx.send("cloudhub", msg)

    async def controller_messages(self, module: str = "edgecontroller") -> list[Message]:
        out = []
        while self.ctx.queue_depth(module):
            out.append(await self.ctx.receive(module))
        return out


@contextlib.asynccontextmanager
async def hub(
    *,
    keepalive: float | None = None,
    node_limit: int = 10,
    authorization: bool = False,
    recorder: Recorder | None = None,
    node_index: Any = None,
    cluster_ca: str | None = None,
    ack_timeout: float = 5.0,
    max_retries: int = 4,
) -> AsyncIterator[Hub]:
    ctx = Context()
    ctx.add_module("edgecontroller", "edgecontroller")
    ctx.add_module("devicecontroller", "devicecontroller")
    settings = SessionSettings(
        keepalive_interval=keepalive,
        node_limit=node_limit,
        authorization=authorization,
        delivery=DeliverySettings(ack_timeout=ack_timeout, max_retries=max_retries),
    )
    manager = SessionManager(
        settings, recorder=recorder, node_index=node_index, cluster_ca=cluster_ca
    )
    pump = asyncio.create_task(manager.run(ctx))
    await asyncio.wait_for(manager.wait_ready(), 5)
    try:
        yield Hub(manager, ctx)
    finally:
        await manager.close()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


def test_the_protocols_match() -> None:
    conn = MemConnection(NODE)
    assert isinstance(conn, NodeConnection)
    assert isinstance(SessionManager(), ConnectionHandler)
    assert handler.SessionManager is SessionManager
    assert handler.SessionSettings is SessionSettings
    with pytest.raises(AttributeError):
        _ = handler.NoSuchThing  # type: ignore[attr-defined]


def test_settings_from_cloudhub_config() -> None:
    @dataclass
    class Node:
        enable: bool

    @dataclass
    class Mode:
        node: Node | None

    @dataclass
    class Authz:
        enable: bool = False  # KubeEdge's SAR authorizer switch: not ours
        modes: list[Mode] = field(default_factory=lambda: [Mode(Node(True))])

    @dataclass
    class Cfg:
        keepalive_interval: int = 45
        node_limit: int = 7
        authorization: Authz = field(default_factory=Authz)

    s = SessionSettings.from_cloudhub_config(Cfg())
    assert (s.keepalive_interval, s.node_limit, s.authorization) == (45.0, 7, True)
    assert s.delivery_settings().keepalive_timeout == 45.0
    off = Cfg(authorization=Authz(modes=[Mode(Node(False))]))
    assert SessionSettings.from_cloudhub_config(off).authorization is False
    no_modes = Cfg(authorization=Authz(modes=[]))
    assert SessionSettings.from_cloudhub_config(no_modes).authorization is False
    assert SessionSettings.from_cloudhub_config(object()).authorization is True


async def test_connect_before_run_is_refused() -> None:
    manager = SessionManager()
    conn = MemConnection(NODE)
    assert not await manager.on_connect(conn)
    assert conn.closed == (handler.CLOSE_NOT_READY, "cloudhub is not ready")


async def test_downstream_is_trimmed_serial_and_acked() -> None:
    async with hub() as h:
        conn = MemConnection(NODE)
        assert await h.manager.on_connect(conn)
        (notice,) = await h.controller_messages()
        assert (notice.operation, notice.resource, notice.source) == (
            "connected",
            f"node/{NODE}",
            "cloudhub",
        )
        assert notice.content["client_id"] == NODE
        a, b = down(uid="a", name="a", rv="5"), down(uid="b", name="b", rv="6")
        sent_before = metric("cloudhub_messages_sent_total")
        acked_before = metric("cloudhub_messages_acked_total")
        await h.send(a)
        await h.send(b)
        first = await conn.next_frame()
        assert first.msg_id == a.msg_id
        assert first.resource == "default/configmap/a"
        assert first.resource_version == "5"
        session = h.manager.session(NODE)
        assert session is not None
        # b is queued but waits for a's ack: nothing else can have been written
        await wait_until(lambda: session.core.stats.queued == 2, what="b queued")
        assert session.core.inflight is a
        assert conn.frames.empty()
        # an error is not an ack
        await h.manager.on_message(conn, up("error", "default/configmap/a", parent=a.msg_id))
        assert session.core.inflight is a
        await h.manager.on_message(conn, first.response("OK"))
        second = await conn.next_frame()
        assert second.msg_id == b.msg_id
        assert metric("cloudhub_messages_sent_total") - sent_before == 2
        assert metric("cloudhub_messages_acked_total") - acked_before == 1


async def test_replies_to_concurrent_queries_for_one_object_all_arrive() -> None:
    """Pods that share a ConfigMap ask for it at once: every request gets its
    reply, though all replies carry the same object (same UID)."""
    async with hub() as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.controller_messages()
        replies = [down("response", uid="cm", rv="7", parent=f"req-{i}") for i in range(3)]
        for r in replies:
            await h.send(r)
        session = h.manager.session(NODE)
        assert session is not None
        # All three wait behind the first, unacked, one.
        await wait_until(lambda: session.core.stats.queued == 3, what="replies queued")
        got = []
        for _ in replies:
            frame = await conn.next_frame()
            got.append(frame.parent_id)
            await h.manager.on_message(conn, frame.response("OK"))
        assert got == ["req-0", "req-1", "req-2"]


async def test_unacked_message_is_resent_with_the_same_id() -> None:
    async with hub(ack_timeout=0.05) as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        retried = metric("cloudhub_messages_retried_total")
        m = down(uid="a")
        await h.send(m)
        copies = [await conn.next_frame() for _ in range(3)]
        assert {c.msg_id for c in copies} == {m.msg_id}
        assert metric("cloudhub_messages_retried_total") - retried >= 2
        await h.manager.on_message(conn, copies[-1].response("OK"))
        session = h.manager.session(NODE)
        assert session is not None
        await wait_until(lambda: session.core.queue_depth() == 0, what="ack")


async def test_queue_depth_metric_follows_the_connected_nodes() -> None:
    async with hub() as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        assert REGISTRY.get_sample_value("cloudhub_node_queue_depth", {"node": NODE}) == 0
        m = down(uid="depth")
        await h.send(m)
        sent = await conn.next_frame()  # in flight, not acked: still waiting
        assert REGISTRY.get_sample_value("cloudhub_node_queue_depth", {"node": NODE}) == 1
        await h.manager.on_message(conn, sent.response("OK"))
        await wait_until(
            lambda: REGISTRY.get_sample_value("cloudhub_node_queue_depth", {"node": NODE}) == 0,
            what="depth 0 after the ack",
        )
        await h.manager.on_disconnect(conn, "test")
        await wait_until(
            lambda: REGISTRY.get_sample_value("cloudhub_node_queue_depth", {"node": NODE}) is None,
            what="series removed",
        )


async def test_noack_replies_are_sent_while_an_ack_message_waits() -> None:
    async with hub() as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.send(down(uid="a"))
        await conn.next_frame()
        reply = down(
            "response", rtype="podpatch", content={"Object": {}, "Err": None}, parent="req"
        )
        await h.send(reply)
        got = await conn.next_frame()
        assert got.msg_id == reply.msg_id
        assert got.parent_id == "req"


async def test_new_connection_replaces_the_old_session() -> None:
    async with hub() as h:
        old, new = MemConnection(NODE), MemConnection(NODE)
        await h.manager.on_connect(old)
        assert await h.manager.on_connect(new)
        assert old.closed == (handler.CLOSE_REPLACED, "replaced by a new connection")
        ops = [m.operation for m in await h.controller_messages()]
        assert ops == ["connected", "disconnected", "connected"]
        # the transport reports the old one gone: no effect on the new session
        await h.manager.on_disconnect(old, "closed")
        assert h.manager.connected_nodes == [NODE]
        await h.manager.on_message(old, up("keepalive", "node"))  # ignored
        await h.send(down())
        assert (await new.next_frame()).resource == "default/configmap/cm"
        assert old.frames.empty()


class SlowClose(MemConnection):
    """A connection whose close takes a while (a peer slow to answer the close)."""

    def __init__(self, node_id: str) -> None:
        super().__init__(node_id)
        self.release = asyncio.Event()

    async def close(self, code: int, reason: str) -> None:
        await super().close(code, reason)
        await self.release.wait()


async def test_two_reconnects_racing_leave_one_live_session() -> None:
    # conn2 replaces conn1, whose close is slow; meanwhile conn3 connects too.
    # The last one installed must be the only session left: an overwritten one
    # would keep its writer task and connection with nobody to end them.
    async with hub() as h:
        first = SlowClose(NODE)
        second, third = MemConnection(NODE), MemConnection(NODE)
        await h.manager.on_connect(first)
        replacing = asyncio.create_task(h.manager.on_connect(second))
        await wait_until(lambda: first.closed is not None)
        assert await h.manager.on_connect(third)
        first.release.set()
        assert await replacing
        live = h.manager.session(NODE)
        assert live is not None
        assert [c.closed is None for c in (first, second, third)].count(True) == 1
        assert live.conn.closed is None
        await h.send(down())
        assert (await live.conn.next_frame()).resource == "default/configmap/cm"  # type: ignore[attr-defined]


async def test_node_limit_refuses_with_a_reason() -> None:
    async with hub(node_limit=1) as h:
        assert await h.manager.on_connect(MemConnection("n1"))
        refused = MemConnection("n2")
        assert not await h.manager.on_connect(refused)
        assert refused.closed == (handler.CLOSE_NODE_LIMIT, "node limit of 1 reached")
        # a reconnect of a connected node is not a new node
        assert await h.manager.on_connect(MemConnection("n1"))
        assert metric("cloudhub_connected_nodes") == 1


async def test_keepalive_timeout_ends_the_session() -> None:
    async with hub(keepalive=0.3) as h:
        alive, silent = MemConnection("alive"), MemConnection("silent")
        # alive connects first: without its pings it would expire before silent
        await h.manager.on_connect(alive)
        await h.manager.on_connect(silent)
        stop = asyncio.Event()

        async def ping() -> None:
            while not stop.is_set():
                await h.manager.on_message(
                    alive,
                    up("keepalive", "node", source="websocket", group="resource", content="ping"),
                )
                await asyncio.sleep(0.05)

        task = asyncio.create_task(ping())
        await wait_until(lambda: silent.closed is not None, what="keepalive expiry")
        assert silent.closed == (handler.CLOSE_KEEPALIVE_TIMEOUT, "keepalive timeout")
        assert alive.closed is None
        assert h.manager.connected_nodes == ["alive"]
        stop.set()
        await task
        notices = [(m.operation, m.resource) for m in await h.controller_messages()]
        assert ("disconnected", "node/silent") in notices


async def test_disconnect_ends_the_session_and_drops_later_messages() -> None:
    recorder = Recorder()
    async with hub(recorder=recorder) as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.manager.on_disconnect(conn, "EOF")
        assert h.manager.connected_nodes == []
        dropped = metric("cloudhub_messages_dropped_total", reason="node_offline")
        await h.send(down(uid="offline-1"))
        await wait_until(
            lambda: metric("cloudhub_messages_dropped_total", reason="node_offline") > dropped,
            what="offline drop",
        )
        # the record is still created, so the synccontroller can deliver it later
        assert recorder.recorded == {"offline-1": "0"}


async def test_node_delete_ends_the_session_instead_of_being_sent() -> None:
    async with hub() as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.send(down("delete", rtype="node", namespace="null", name=NODE, uid="n"))
        await wait_until(lambda: conn.closed is not None, what="close")
        assert conn.closed == (handler.CLOSE_NODE_DELETED, "node deleted")
        assert conn.frames.empty()
        assert h.manager.connected_nodes == []


async def test_write_failure_ends_the_session() -> None:
    async with hub() as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        conn.fail_writes = True
        await h.send(down())
        await wait_until(lambda: conn.closed is not None, what="close")
        assert conn.closed is not None and conn.closed[0] == handler.CLOSE_WRITE_FAILED
        assert h.manager.connected_nodes == []


async def test_downstream_without_node_prefix_is_dropped() -> None:
    async with hub() as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        before = metric("cloudhub_messages_dropped_total", reason="no_node")
        bad = Message.new(
            source="edgecontroller",
            group="resource",
            operation="update",
            resource="default/configmap/x",
            content={},
        )
        await h.send(bad)
        await wait_until(
            lambda: metric("cloudhub_messages_dropped_total", reason="no_node") > before,
            what="drop",
        )
        assert conn.frames.empty()


async def test_acks_are_recorded_and_recorded_versions_are_not_resent() -> None:
    recorder = Recorder(recorded={"a": "7"})
    async with hub(recorder=recorder) as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        edge = MemEdge(h.manager, conn)
        edge.start()
        await h.send(down(uid="a", rv="7"))  # already delivered before a restart
        await h.send(down(uid="a", rv="8"))
        await h.send(down(uid="b", name="b", rv="3"))
        await wait_until(lambda: recorder.recorded == {"a": "8", "b": "3"}, what="records")
        assert edge.history == {"a": [8], "b": [3]}
        await h.send(down("delete", uid="b", name="b", rv="4"))
        await wait_until(lambda: "b" not in recorder.recorded, what="delete record")
        await edge.stop()


async def test_upstream_dispatch_to_controllers() -> None:
    async with hub() as h:
        h.ctx.add_module("router", "router")
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.controller_messages()
        before = metric("cloudhub_upstream_messages_total", operation="insert")
        reg = up("insert", f"null/node/{NODE}", content={"metadata": {"name": NODE}})
        await h.manager.on_message(conn, reg)
        (got,) = await h.controller_messages()
        assert got.resource == f"node/{NODE}/null/node/{NODE}"
        assert got.msg_id == reg.msg_id
        assert metric("cloudhub_upstream_messages_total", operation="insert") - before == 1
        twin = up("update", "device/default/d/twin/edge_updated", source="twin", group="resource")
        await h.manager.on_message(conn, twin)
        (dev,) = await h.controller_messages("devicecontroller")
        assert dev.resource == f"node/{NODE}/device/default/d/twin/edge_updated"
        upload = up("upload", "topic/a", source="bus", group="user", content="x")
        await h.manager.on_message(conn, upload)
        (routed,) = await h.controller_messages("router")
        assert routed.resource == f"node/{NODE}/topic/a"
        # a controller's reply goes back to the edge, trimmed
        resp = got.response({"Object": {"metadata": {"name": NODE}}, "Err": None})
        resp.route.source, resp.route.group = "edgecontroller", "resource"
        await h.send(resp)
        reply = await conn.next_frame()
        assert reply.parent_id == reg.msg_id
        assert reply.resource == f"null/node/{NODE}"


async def test_messages_for_absent_groups_are_dropped_not_fatal() -> None:
    async with hub() as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.manager.on_message(conn, up("upload", "t", source="bus", group="user"))
        await h.manager.on_message(conn, up("update", "x/y/z", source="metaserver"))
        assert h.manager.connected_nodes == [NODE]


async def test_cluster_ca_is_answered_by_cloudhub() -> None:
    async with hub(cluster_ca="-----BEGIN CERTIFICATE-----") as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        req = up("query", "k8s/ca.crt")
        await h.manager.on_message(conn, req)
        reply = await conn.next_frame()
        assert (reply.operation, reply.resource, reply.parent_id) == (
            "response",
            "k8s/ca.crt",
            req.msg_id,
        )
        assert reply.content == "-----BEGIN CERTIFICATE-----"
    async with hub() as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.manager.on_message(conn, req)
        reply = await conn.next_frame()
        assert reply.operation == "error"


class OwnedIndex:
    async def pod_bound(self, node: str, namespace: str, name: str) -> bool:
        return name == "mine"

    async def pod_exists(self, namespace: str, name: str) -> bool:
        return name in ("mine", "theirs")

    async def configmap_referenced(self, node: str, namespace: str, name: str) -> bool:
        return name == "mine"

    async def secret_referenced(self, node: str, namespace: str, name: str) -> bool:
        return name == "mine"

    async def serviceaccount_referenced(self, node: str, namespace: str, name: str) -> bool:
        return name == "mine"


async def test_node_authorization_refuses_with_an_error_reply_and_a_metric() -> None:
    async with hub(authorization=True, node_index=OwnedIndex()) as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.controller_messages()
        before = metric("cloudhub_unauthorized_messages_total", reason="other_node")
        steal = up("query", "null/node/edge-2")
        await h.manager.on_message(conn, steal)
        err = await conn.next_frame()
        assert (err.operation, err.parent_id, err.resource) == (
            "error",
            steal.msg_id,
            "null/node/edge-2",
        )
        assert (err.source, err.group) == ("cloudhub", "resource")
        assert "node authorization" in err.content and "edge-2" in err.content
        assert metric("cloudhub_unauthorized_messages_total", reason="other_node") - before == 1
        assert await h.controller_messages() == []
        # lookups through the index
        await h.manager.on_message(conn, up("query", "default/secret/theirs"))
        assert (await conn.next_frame()).operation == "error"
        await h.manager.on_message(conn, up("query", "default/secret/mine"))
        await h.manager.on_message(conn, up("patch", "default/podpatch/mine", content="{}"))
        await h.manager.on_message(conn, up("query", f"kube-node-lease/lease/{NODE}"))
        passed = [m.resource for m in await h.controller_messages()]
        assert passed == [
            f"node/{NODE}/default/secret/mine",
            f"node/{NODE}/default/podpatch/mine",
            f"node/{NODE}/kube-node-lease/lease/{NODE}",
        ]
        # the session survives refusals
        assert h.manager.connected_nodes == [NODE]


async def test_delete_of_a_missing_pod_is_answered_not_found() -> None:
    """The edge's delete of a pod the API already removed gets the API server's
    NotFound (a response, nothing forwarded), not an authorization refusal."""
    async with hub(authorization=True, node_index=OwnedIndex()) as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.controller_messages()
        before = metric("cloudhub_unauthorized_messages_total", reason="pod_not_bound")
        delete = up("delete", "default/pod/gone", content={"gracePeriodSeconds": 0})
        await h.manager.on_message(conn, delete)
        reply = await conn.next_frame()
        assert (reply.operation, reply.parent_id, reply.resource) == (
            "response",
            delete.msg_id,
            "default/pod/gone",
        )
        status = reply.content["ErrStatus"]
        assert (status["reason"], status["code"]) == ("NotFound", 404)
        assert metric("cloudhub_unauthorized_messages_total", reason="pod_not_bound") == before
        # a pod bound to another node is still refused
        await h.manager.on_message(conn, up("delete", "default/pod/theirs", content={}))
        err = await conn.next_frame()
        assert err.operation == "error" and "not bound" in err.content
        assert await h.controller_messages() == []


async def test_authorization_without_an_index_refuses_lookups() -> None:
    async with hub(authorization=True) as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.manager.on_message(conn, up("query", "default/configmap/c"))
        err = await conn.next_frame()
        assert err.operation == "error"


async def test_authorization_off_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    SessionManager(SessionSettings(authorization=False))
    assert any("authorization is disabled" in r.getMessage() for r in caplog.records)


async def test_close_ends_every_session() -> None:
    async with hub() as h:
        conns = [MemConnection(f"n{i}") for i in range(3)]
        for c in conns:
            await h.manager.on_connect(c)
        await h.manager.close()
        await h.manager.close()
        assert all(c.closed == (handler.CLOSE_GOING_AWAY, "cloudcore shutting down") for c in conns)
        assert not await h.manager.on_connect(MemConnection("late"))


async def test_an_empty_message_is_ignored_not_answered() -> None:
    # edgecore sends {"header": {"msg_id": "", "timestamp": 0}, "route": {}} on close
    async with hub(authorization=True) as h:
        conn = MemConnection(NODE)
        await h.manager.on_connect(conn)
        await h.controller_messages()
        await h.manager.on_message(conn, Message())
        await h.manager.on_message(conn, up("keepalive", "node"))
        session = h.manager.session(NODE)
        assert session is not None
        await wait_until(lambda: session.core.queue_depth() == 0, what="writer idle")
        assert conn.drain() == []
        assert await h.controller_messages() == []
        assert h.manager.connected_nodes == [NODE]
