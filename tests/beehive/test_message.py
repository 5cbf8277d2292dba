"""beehive.message: construction, responses as KubeEdge builds them, copies."""

from __future__ import annotations

import time
import uuid

from beehive import Message, MessageHeader, MessageRoute, new_msg_id, now_ms
from beehive import constants as c


def test_new_message_has_a_uuid_and_a_millisecond_timestamp() -> None:
    before = time.time_ns() // 1_000_000
    m = Message.new(
        source=c.MOD_EDGED,
        group=c.GROUP_META,
        operation=c.OP_QUERY,
        resource="default/configmap/cm",
    )
    after = time.time_ns() // 1_000_000
    assert uuid.UUID(m.msg_id).version == 4
    assert before <= m.header.timestamp <= after
    assert m.content is None and m.parent_id == "" and m.resource_version == ""
    assert (m.source, m.group, m.operation, m.resource) == (
        "edged",
        "meta",
        "query",
        "default/configmap/cm",
    )
    assert Message.new(source="s", group="g", operation="o", resource="r").msg_id != m.msg_id


def test_new_message_options() -> None:
    m = Message.new(
        source="s",
        group="g",
        operation="o",
        resource="r",
        content={"a": 1},
        parent_msg_id="p",
        resource_version="7",
        timestamp=42,
    )
    assert (m.parent_id, m.resource_version, m.header.timestamp, m.content) == (
        "p",
        "7",
        42,
        {"a": 1},
    )
    assert m.is_response()


def test_response_is_new_resp_by_message() -> None:
    req = Message(
        MessageHeader(msg_id="req", timestamp=1, resource_version="9", sync=True, type="channel"),
        MessageRoute(
            source="edgecontroller",
            destination="x",
            group="resource",
            operation="insert",
            resource="default/pod/p",
        ),
        {"kind": "Pod"},
    )
    resp = req.response(c.CONTENT_OK)
    assert resp.msg_id not in ("", "req")
    assert resp.parent_id == "req"
    assert resp.operation == c.OP_RESPONSE
    assert (resp.source, resp.group, resp.resource) == (
        "edgecontroller",
        "resource",
        "default/pod/p",
    )
    assert resp.route.destination == ""
    assert resp.header.type == "channel"  # copied, as NewRespByMessage does
    assert resp.header.sync is False and resp.resource_version == ""
    assert resp.content == "OK"
    assert resp.header.timestamp >= now_ms() - 5_000
    assert req.response("x", operation="custom").operation == "custom"


def test_error_response_is_new_error_message() -> None:
    req = Message.new(source="edged", group="meta", operation="query", resource="ns/secret/s")
    err = req.error_response("not found")
    assert err.operation == c.OP_ERROR
    assert err.parent_id == req.msg_id
    assert err.resource == "ns/secret/s"
    assert (err.source, err.group) == ("", "")
    assert err.content == "not found"


def test_copy_is_independent_but_shares_content() -> None:
    m = Message.new(
        source="s", group="g", operation="o", resource="r", content={"k": [1]}, resource_version="3"
    )
    m.header.sync = True
    dup = m.copy()
    assert dup == m and dup is not m
    dup.route.resource = "other"
    dup.header.msg_id = "changed"
    assert m.resource == "r" and m.msg_id != "changed"
    assert dup.content is m.content


def test_describe_names_the_ids_and_route() -> None:
    m = Message.new(source="s", group="g", operation="o", resource="r", parent_msg_id="p")
    text = m.describe()
    assert m.msg_id in text and "parent=p" in text and "s/g o r" in text
    assert "parent=-" in Message.new(source="s", group="g", operation="o", resource="r").describe()


def test_ids_are_unique() -> None:
    assert len({new_msg_id() for _ in range(1000)}) == 1000
