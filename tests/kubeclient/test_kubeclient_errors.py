"""Status bodies map onto the error tree; resource paths are built right."""

from __future__ import annotations

import pytest

import kubeclient
from kubeclient.errors import error_from_status


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [(400, "BadRequest", kubeclient.BadRequest), (401, "Unauthorized", kubeclient.Unauthorized),
     (403, "Forbidden", kubeclient.Forbidden), (404, "NotFound", kubeclient.NotFound),
     (409, "Conflict", kubeclient.Conflict), (409, "AlreadyExists", kubeclient.AlreadyExists),
     (410, "Expired", kubeclient.Gone), (422, "Invalid", kubeclient.Invalid),
     (429, "TooManyRequests", kubeclient.TooManyRequests),
     (500, "InternalError", kubeclient.ServerError), (503, "ServiceUnavailable",
                                                      kubeclient.ServerError),
     (418, "Teapot", kubeclient.ApiError)],
)
def test_status_maps_to_class(code: int, reason: str, cls: type) -> None:
    body = {"kind": "Status", "code": code, "reason": reason, "message": "m",
            "details": {"retryAfterSeconds": 3}}
    err = error_from_status(code, body)
    assert type(err) is cls
    assert (err.status, err.reason, err.message, err.body) == (code, reason, "m", body)
    assert err.retry_after == 3.0


def test_code_in_the_body_wins_and_non_status_bodies() -> None:
    # Watch ERROR events carry the code only in the body.
    assert isinstance(error_from_status(200, {"kind": "Status", "code": 410}), kubeclient.Gone)
    err = error_from_status(502, None, text="<html>bad gateway</html>")
    assert isinstance(err, kubeclient.ServerError)
    assert err.body["kind"] == "Status" and err.body["code"] == 502
    assert "bad gateway" in err.message
    assert err.retry_after is None


def test_resource_paths() -> None:
    assert kubeclient.PODS.path(namespace="ns", name="p", subresource="status") == \
        "/api/v1/namespaces/ns/pods/p/status"
    assert kubeclient.DEVICES.path() == "/apis/devices.kubeedge.io/v1beta1/devices"
    assert kubeclient.NODES.api_version == "v1"
    assert kubeclient.LEASES.api_version == "coordination.k8s.io/v1"
    with pytest.raises(ValueError, match="needs an object name"):
        kubeclient.PODS.path(namespace="ns", subresource="status")
