"""Kubernetes ``Status`` errors with the reason and code kube-apiserver uses.

Mirrors k8s.io/apimachinery/pkg/api/errors/errors.go: every failure the server
answers is a ``kind: Status`` body whose ``reason``/``code`` pair matches what a
real API server sends for the same request, so clients branch on it the same way.

Exception tree (the root is ``DevKubeError``)::

    DevKubeError
    ├── ApiError                  any Status failure; ``code`` is the HTTP status
    ├── store.Expired             a watch/list resourceVersion that was compacted (-> 410)
    ├── patching.PatchError       a malformed patch document (-> 400)
    ├── patching.PatchConflict    a patch that cannot apply, e.g. a failed test (-> 422)
    ├── selectors.SelectorError   a selector that does not parse (-> 400)
    └── protobuf.ProtobufError    a protobuf body we cannot read (-> 415)

Only ``ApiError`` reaches HTTP: ``api.Api`` converts the others, chaining them.
"""

from __future__ import annotations

from typing import Any


class DevKubeError(Exception):
    """The root of devkube's exceptions."""


class ApiError(DevKubeError):
    """A request failure answered as a ``kind: Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def _details(group: str, plural: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = plural
    return details


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{_qualified(group, plural)} "{name}" not found',
        details=_details(group, plural, name),
    )


def resource_not_found() -> ApiError:
    return ApiError(
        404, "NotFound", "the server could not find the requested resource", details={}
    )


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(group, plural)} "{name}" already exists',
        details=_details(group, plural, name),
    )


def conflict(group: str, plural: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {why}',
        details=_details(group, plural, name),
    )


STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(
    group: str, kind: str, name: str, causes: list[tuple[str, str, str]]
) -> ApiError:
    """Invalid (422); ``causes`` are (reason, field, message) triples, e.g.
    ("FieldValueInvalid", "metadata.name", 'Invalid value: "X": ...')."""
    joined = ", ".join(f"{field}: {message}" for _, field, message in causes)
    if len(causes) > 1:
        joined = f"[{joined}]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": reason, "message": message, "field": field}
        for reason, field, message in causes
    ]
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {joined}', details=details)


def apply_conflict(message: str, causes: list[tuple[str, str]]) -> ApiError:
    """A server-side apply conflict (409 Conflict, kube's NewApplyConflict); ``causes``
    are (printed manager, field path) pairs."""
    return ApiError(
        409,
        "Conflict",
        message,
        details={"causes": [
            {"reason": "FieldManagerConflict", "message": f"conflict with {manager}",
             "field": field}
            for manager, field in causes
        ]},
    )


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Gone", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def method_not_allowed(verb: str, what: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"{verb} is not supported on resources of kind {what}")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml (got {content_type!r})",
    )


def unsupported_patch(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
    )


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")
