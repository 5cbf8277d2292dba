"""The edge hub's link: headers, keepalive, reconnect, control, rotation, rate limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from pathlib import Path

import pytest

from beehive import codec
from beehive.message import Message
from fixtures.minicloud import (
    EdgeRunner,
    MiniCloud,
    Probe,
    capture_lines,
    cloud_answer,
    edge_settings,
    shape,
    wait_until,
)


def _captured_upgrade() -> dict[str, object]:
    (up,) = [line for line in capture_lines() if line["dir"] == "upgrade"]
    return up["frame"]


async def test_upgrade_path_headers_and_first_keepalive_match_the_capture(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    settings = edge_settings(minicloud, tmp_path, node="capture-edge")
    async with EdgeRunner(settings):
        up = await minicloud.wait_for(lambda: minicloud.upgrades and minicloud.upgrades[0])
        first = await minicloud.wait_message(lambda m: True)
    captured = _captured_upgrade()
    assert up.path == captured["path"]
    ours = dict(up.headers)
    for key in ("Connectionuse", "Node_id", "Project_id"):
        assert ours[key] == captured["headers"][key]  # type: ignore[index]
    assert "Origin" not in ours
    # the first frame is the keepalive, shaped as KubeEdge's
    keepalive = next(
        line["frame"]
        for line in capture_lines()
        if line["dir"] == "edge->cloud" and line["frame"]["route"].get("operation") == "keepalive"
    )
    assert shape(codec.to_obj(first)) == shape(keepalive)


async def test_keepalive_every_heartbeat(minicloud: MiniCloud, tmp_path: Path) -> None:
    settings = edge_settings(minicloud, tmp_path, heartbeat=0.3)
    async with EdgeRunner(settings):
        await minicloud.wait_for(
            lambda: sum(m.operation == "keepalive" for m in minicloud.received) >= 4, timeout=5
        )
    times = [
        t
        for m, t in zip(minicloud.received, minicloud.received_at, strict=True)
        if m.operation == "keepalive"
    ]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.25 <= g <= 0.6 for g in gaps[:3]), gaps


async def test_reconnects_after_the_cloud_drops_and_tells_the_modules(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    meta = Probe("metamanager", "meta")
    edged = Probe("edged", "edged")
    settings = edge_settings(minicloud, tmp_path)
    async with EdgeRunner(settings, probes=[meta, edged]) as edge:
        await minicloud.wait_for(lambda: len(minicloud.upgrades) == 1)
        await wait_until(lambda: len(meta.notices) == 1)
        await minicloud.drop()
        await minicloud.wait_for(lambda: len(minicloud.upgrades) == 2, timeout=5)
        await wait_until(lambda: len(meta.notices) == 3 and len(edged.notices) == 3)
        assert edge.hub.stats["sessions"] == 2
    for probe, group in ((meta, "meta"), (edged, "edged")):
        assert [m.content for m in probe.notices] == [
            "cloud_connected",
            "cloud_disconnected",
            "cloud_connected",
        ]
        for m in probe.notices:
            assert (m.source, m.group, m.operation, m.resource) == (
                "edgehub",
                group,
                "connect",
                "node/connection",
            )


async def test_reconnects_while_the_cloud_is_down(minicloud: MiniCloud, tmp_path: Path) -> None:
    settings = edge_settings(minicloud, tmp_path)
    async with EdgeRunner(settings) as edge:
        await minicloud.wait_for(lambda: len(minicloud.upgrades) == 1)
        await minicloud.stop_ws()
        await wait_until(lambda: not edge.hub.connected.is_set())
        await minicloud.start_ws()  # same port
        await minicloud.wait_for(lambda: len(minicloud.upgrades) == 2, timeout=5)
        await wait_until(edge.hub.connected.is_set)


async def test_control_messages_are_acked(minicloud: MiniCloud, tmp_path: Path) -> None:
    async with EdgeRunner(edge_settings(minicloud, tmp_path)):
        await minicloud.wait_for(lambda: minicloud.connections)
        for op in ("ping", "pong", "config"):
            ctl = Message.new(source="cloudhub", group="", operation=op, resource="", content="")
            await minicloud.send(ctl)
            reply = await minicloud.wait_message(lambda m, i=ctl.msg_id: m.parent_id == i)
            assert (reply.operation, reply.content) == ("response", "ack")


async def test_malformed_frames_reconnect_without_crashing(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    async with EdgeRunner(edge_settings(minicloud, tmp_path)) as edge:
        for n, bad in enumerate(["not json", "[1,2]", '{"header": {"timestamp": "x"}}'], start=2):
            await minicloud.wait_for(lambda n=n: len(minicloud.upgrades) == n - 1)
            await minicloud.wait_for(lambda: edge.hub.connected.is_set())
            await minicloud.send_raw(bad)
            await minicloud.wait_for(lambda n=n: len(minicloud.upgrades) == n, timeout=5)
        assert edge.hub.stats["malformed"] == 3
        assert edge.exit_code is None  # still running


async def test_unmatched_response_and_unknown_group_are_dropped(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    async with EdgeRunner(edge_settings(minicloud, tmp_path)) as edge:
        await minicloud.wait_for(lambda: edge.hub.connected.is_set())
        await minicloud.send(
            Message.new(
                source="edgecontroller",
                group="resource",
                operation="response",
                resource="default/pod/x",
                parent_msg_id="nobody-waits",
            )
        )
        await minicloud.send(
            Message.new(source="x", group="nosuchgroup", operation="update", resource="a/b/c")
        )
        await minicloud.send(
            Message.new(
                source="devicecontroller", group="twin", operation="update", resource="membership"
            )
        )
        await wait_until(lambda: edge.hub.stats["dropped"] == 2)
        assert edge.hub.stats["sessions"] == 1


async def test_responses_reach_the_waiting_request(minicloud: MiniCloud, tmp_path: Path) -> None:
    def answer(msg: Message) -> Message | None:
        if msg.operation == "query":
            return cloud_answer(msg, {"kind": "ConfigMap"})
        return None

    minicloud.responder = answer
    async with EdgeRunner(edge_settings(minicloud, tmp_path)) as edge:
        await wait_until(edge.hub.connected.is_set)
        req = Message.new(
            source="edged", group="meta", operation="query", resource="default/configmap/a"
        )
        resp = await edge.ctx.send_sync("websocket", req, timeout=5)
        assert resp.content == {"kind": "ConfigMap"}
        # the wire copy does not carry beehive's sync flag (viaduct clears it)
        sent = await minicloud.wait_message(lambda m: m.msg_id == req.msg_id)
        assert "sync" not in codec.to_obj(sent)["header"]


async def test_requests_fail_fast_while_disconnected(minicloud: MiniCloud, tmp_path: Path) -> None:
    await minicloud.stop_ws()
    async with EdgeRunner(edge_settings(minicloud, tmp_path)) as edge:
        await wait_until(lambda: edge.hub._cert is not None)
        req = Message.new(
            source="edged", group="meta", operation="query", resource="default/configmap/a"
        )
        started = time.monotonic()
        resp = await edge.ctx.send_sync("websocket", req, timeout=5)
        assert resp.operation == "error" and "disconnected" in resp.content
        assert time.monotonic() - started < 1


async def test_upstream_rate_limit(minicloud: MiniCloud, tmp_path: Path) -> None:
    settings = edge_settings(minicloud, tmp_path, message_qps=10, message_burst=3)
    async with EdgeRunner(settings) as edge:
        await wait_until(edge.hub.connected.is_set)
        for i in range(9):
            await edge.ctx.send(
                "websocket",
                Message.new(
                    source="edged",
                    group="meta",
                    operation="insert",
                    resource=f"default/event/e{i}",
                    content={},
                ),
            )
        await minicloud.wait_for(
            lambda: sum(m.operation == "insert" for m in minicloud.received) == 9, timeout=5
        )
    times = [
        t
        for m, t in zip(minicloud.received, minicloud.received_at, strict=True)
        if m.operation == "insert"
    ]
    # 3 at once (burst), then 10/s: the 9th is ~0.6 s after the first
    assert times[2] - times[0] < 0.2
    assert 0.45 <= times[8] - times[0] <= 1.5


async def test_certificate_rotation_then_reconnect(minicloud: MiniCloud, tmp_path: Path) -> None:
    minicloud.cert_lifetime = dt.timedelta(seconds=3)
    async with EdgeRunner(edge_settings(minicloud, tmp_path)) as edge:
        await minicloud.wait_for(lambda: len(minicloud.upgrades) == 1)
        # the rotation request is authenticated by the client cert, then the
        # hub reconnects presenting the new certificate
        await minicloud.wait_for(lambda: len(minicloud.issued) >= 2, timeout=6)
        assert minicloud.issued[1].auth == "cert"
        await minicloud.wait_for(lambda: len(minicloud.upgrades) >= 2, timeout=5)
        assert minicloud.upgrades[0].client_serial == minicloud.issued[0].serial
        assert minicloud.upgrades[1].client_serial == minicloud.issued[1].serial
        assert edge.hub.stats["rotations"] >= 1
        await asyncio.sleep(0)


async def test_expired_certificate_is_reported_and_renewed_with_a_new_token(
    minicloud: MiniCloud, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    minicloud.cert_lifetime = dt.timedelta(seconds=2)
    token_file = tmp_path / "bootstrap-edgecore.conf"
    settings = edge_settings(
        minicloud, tmp_path, rotate_certificates=False, bootstrap_token_file=token_file
    )
    async with EdgeRunner(settings) as edge:
        await minicloud.wait_for(lambda: len(minicloud.upgrades) == 1)
        await minicloud.stop_ws()
        await minicloud.drop()
        # the certificate expires while the cloud is away: a clear error, still running
        await wait_until(lambda: "expired at" in caplog.text, timeout=10)
        assert edge.exit_code is None
        minicloud.cert_lifetime = dt.timedelta(days=1)
        token_file.write_text(minicloud.token())
        await minicloud.start_ws()
        await minicloud.wait_for(lambda: len(minicloud.upgrades) == 2, timeout=10)
        assert [i.auth for i in minicloud.issued] == ["token", "token"]
        assert minicloud.upgrades[1].client_serial == minicloud.issued[1].serial
        assert not token_file.exists()


async def test_a_bug_in_one_message_costs_only_the_session(
    minicloud: MiniCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgecore.edgehub import routing

    real = routing.route_downstream

    def faulty(msg: Message) -> routing.Decision:
        if msg.resource == "boom/x/y":
            raise RuntimeError("injected fault")
        return real(msg)

    monkeypatch.setattr(routing, "route_downstream", faulty)
    async with EdgeRunner(edge_settings(minicloud, tmp_path)) as edge:
        await wait_until(edge.hub.connected.is_set)
        await minicloud.send(
            Message.new(
                source="edgecontroller", group="resource", operation="update", resource="boom/x/y"
            )
        )
        await minicloud.wait_for(lambda: len(minicloud.upgrades) == 2, timeout=5)
        assert edge.exit_code is None
