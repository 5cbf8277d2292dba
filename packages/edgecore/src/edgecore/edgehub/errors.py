"""Exceptions raised by the edge hub.

::

    EdgeHubError
    ├── BootstrapError             getting a client certificate failed
    │   ├── CloudUnreachable       the HTTPS server could not be reached (retried)
    │   ├── InvalidToken           the token is not <caHash>.<jwt>
    │   ├── CAHashMismatch         the fetched CA does not match the token's hash
    │   ├── TokenRefused           the cloud refused the token or the client cert
    │   └── CertificateExpired     the certificate on disk (or issued) is expired
    ├── LinkError                  the cloud connection failed or closed
    │   └── MalformedFrame         the cloud sent a frame we cannot decode
    └── InvalidState               the hub core was driven out of order (a bug)
"""

from __future__ import annotations

__all__ = [
    "BootstrapError",
    "CAHashMismatch",
    "CertificateExpired",
    "CloudUnreachable",
    "EdgeHubError",
    "InvalidState",
    "InvalidToken",
    "LinkError",
    "MalformedFrame",
    "TokenRefused",
]


class EdgeHubError(Exception):
    """Root of every edge hub error."""


class BootstrapError(EdgeHubError):
    """The edge could not obtain or load its client certificate."""

    #: whether retrying later may help (a network problem) or not (a bad token)
    retryable = False


class CloudUnreachable(BootstrapError):
    retryable = True


class InvalidToken(BootstrapError):
    pass


class CAHashMismatch(BootstrapError):
    pass


class TokenRefused(BootstrapError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"the cloud refused the certificate request (HTTP {status}): {reason}")
        self.status = status
        self.reason = reason


class CertificateExpired(BootstrapError):
    pass


class LinkError(EdgeHubError):
    """The connection to the cloud is closed or failed."""


class MalformedFrame(LinkError):
    """A downstream frame could not be decoded; the connection is dropped."""


class InvalidState(EdgeHubError):
    """A call the edge hub core does not accept in its current state."""
