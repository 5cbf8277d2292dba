"""MetaClient's reading of every answer shape in the captures, and its requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from beehive import codec
from beehive.context import Context
from edgecore.metaclient import (
    MetaAlreadyExists,
    MetaClient,
    MetaError,
    MetaNotFound,
    MetaTimeout,
    MetaUnavailable,
    _error_for,
)
from edgecore.metamanager import shapes
from fixtures.minicloud import capture_lines


def _answers() -> list[dict[str, Any]]:
    return [
        line["frame"]
        for line in capture_lines()
        if line["dir"] == "cloud->edge" and line["frame"]["header"].get("parent_msg_id")
    ]


def test_every_captured_answer_splits() -> None:
    answers = _answers()
    assert answers
    for frame in answers:
        content = frame["content"]
        answer = shapes.split_answer(content)
        if isinstance(content, dict) and "Err" in content:
            assert (answer.error is None) == (content["Err"] is None)
            assert answer.obj == content["Object"]
        elif content == "OK":
            assert answer.ok and answer.obj is None
        else:
            assert answer.ok and answer.obj == content


def test_not_found_lease_from_the_capture() -> None:
    frame = next(
        f for f in _answers() if isinstance(f["content"], dict) and f["content"].get("Err")
    )
    answer = shapes.split_answer(frame["content"])
    err = _error_for(answer.error or {}, "query lease")
    assert isinstance(err, MetaNotFound) and err.code == 404 and err.reason == "NotFound"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"ErrStatus": {"code": 404, "reason": "NotFound", "message": "x"}}, MetaNotFound),
        (
            {"Object": None, "Err": {"ErrStatus": {"code": 409, "reason": "AlreadyExists"}}},
            MetaAlreadyExists,
        ),
        (shapes.status(503, "ServiceUnavailable", "away"), MetaUnavailable),
        (shapes.status(503, "Queued", "kept"), MetaUnavailable),
        (shapes.status(504, "Timeout", "slow"), MetaTimeout),
        (shapes.status(500, "InternalError", "boom"), MetaError),
        ("some error text", MetaError),
        (json.dumps({"ErrStatus": {"code": 404, "reason": "NotFound"}}), MetaNotFound),
    ],
)
def test_error_shapes(content: Any, error: type[MetaError]) -> None:
    answer = shapes.split_answer(content)
    assert not answer.ok
    err = _error_for(answer.error or {}, "x")
    assert type(err) is error
    if isinstance(err, MetaUnavailable):
        assert err.queued == (err.reason == "Queued")


def test_requests_are_built_like_kubeedge() -> None:
    client = MetaClient(Context())
    captured = {
        (f["route"]["operation"], f["route"]["resource"].split("/")[1]): f
        for f in (line["frame"] for line in capture_lines() if line["dir"] == "edge->cloud")
        if f["route"].get("group") == "meta"
    }
    for (op, kind), frame in captured.items():
        ours = client.build(op, frame["route"]["resource"], frame["content"])
        obj = codec.to_obj(ours)
        assert obj["route"] == frame["route"], kind
        assert sorted(obj["header"]) == sorted(frame["header"])


def test_patches_are_json_text_with_go_key_order() -> None:
    patches = [
        line["frame"]["content"]
        for line in capture_lines()
        if line["dir"] == "edge->cloud" and line["frame"]["route"].get("operation") == "patch"
    ]
    assert patches
    from edgecore.metaclient import _compact

    for text in patches:
        assert _compact(json.loads(text)) == text
