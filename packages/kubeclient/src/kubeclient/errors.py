"""Errors raised by kubeclient.

The tree::

    KubeClientError                 root of everything this package raises
    +-- ConfigError                 kubeconfig / in-cluster config unusable
    +-- ApiConnectionError          the API server could not be reached (after retries)
    +-- WatchError                  a watch stream broke (bad line, inactivity)
    +-- ApiError                    the API server answered with an error Status
        +-- BadRequest              400
        +-- Unauthorized            401
        +-- Forbidden               403
        +-- NotFound                404
        +-- Conflict                409 (optimistic concurrency)
        |   +-- AlreadyExists       409 with reason AlreadyExists
        +-- Gone                    410 (resourceVersion too old: relist)
        +-- Invalid                 422
        +-- TooManyRequests         429
        +-- ServerError             5xx

An :class:`ApiError` keeps the whole ``kind: Status`` body in ``body`` so that
callers (edgecontroller) can forward it to the edge as ``{"ErrStatus": ...}``.
Errors from aiohttp never leave this package unwrapped: they are chained with
``raise ... from``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyExists",
    "ApiConnectionError",
    "ApiError",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeClientError",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "WatchError",
    "error_from_status",
]


class KubeClientError(Exception):
    """Root of every error kubeclient raises."""


class ConfigError(KubeClientError):
    """The kubeconfig (or in-cluster environment) cannot be used."""


class ApiConnectionError(KubeClientError):
    """The API server could not be reached, even after the retries."""


class WatchError(KubeClientError):
    """A watch stream broke in a way that is not an API Status."""


class ApiError(KubeClientError):
    """The API server answered with an error (a ``kind: Status`` body).

    Attributes:
        status: HTTP status code (``code`` of the Status).
        reason: the Status ``reason`` (``NotFound``, ``AlreadyExists`` ...).
        message: the human message of the Status.
        body: the Status as a dict (synthesised when the server sent none).
    """

    def __init__(self, status: int, reason: str, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body

    @property
    def retry_after(self) -> float | None:
        """``details.retryAfterSeconds`` of the Status, if any."""
        details = self.body.get("details") or {}
        value = details.get("retryAfterSeconds")
        return float(value) if isinstance(value, int | float) else None


class BadRequest(ApiError):
    """400."""


class Unauthorized(ApiError):
    """401: credentials missing or wrong."""


class Forbidden(ApiError):
    """403: authenticated but not allowed."""


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409: the object changed since it was read (resourceVersion mismatch)."""


class AlreadyExists(Conflict):
    """409 with reason ``AlreadyExists``: a create found the name taken."""


class Gone(ApiError):
    """410: the requested resourceVersion is older than the server keeps."""


class Invalid(ApiError):
    """422: the object failed validation."""


class TooManyRequests(ApiError):
    """429: the server asks the client to slow down (``Retry-After``)."""


class ServerError(ApiError):
    """5xx."""


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def synthesize_status(code: int, message: str) -> dict[str, Any]:
    """A ``kind: Status`` for a response that did not carry one."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown" if code < 500 else "InternalError"),
        "code": code,
    }


def error_from_status(code: int, body: Any, *, text: str = "") -> ApiError:
    """Map an HTTP status and (maybe) a Status body to the ApiError subclass.

    Args:
        code: the HTTP status code; a Status ``code`` in the body wins when present
            (watch ERROR events carry the code only in the body).
        body: the decoded JSON body, or anything else when it was not a Status.
        text: the raw body text, used as the message when there is no Status.
    """
    if isinstance(body, dict) and body.get("kind") == "Status":
        status = body
        code = int(status.get("code") or code)
    else:
        status = synthesize_status(code, text.strip()[:500] or f"HTTP {code}")
    reason = str(status.get("reason") or _REASONS.get(code, "Unknown"))
    message = str(status.get("message") or "")
    cls: type[ApiError]
    if code == 409 and reason == "AlreadyExists":
        cls = AlreadyExists
    elif code >= 500:
        cls = ServerError
    else:
        cls = _BY_CODE.get(code, ApiError)
    return cls(code, reason, message, status)
