"""edged's exceptions.

The tree::

    EdgedError                      root of everything edged raises
    +-- CRIError                    a CRI call failed (grpc status kept in .code)
    |   +-- CRIUnavailable          the runtime socket is not answering (retry later)
    |   +-- CRITimeout              the call exceeded its named deadline
    |   +-- CRINotFound             the container / sandbox / image does not exist
    +-- ImagePullError              image missing and the pull policy or the pull failed
    +-- PodSpecError                the pod asks for something edged cannot build
    |                               (bad volume, unknown env source, ...)
    +-- ConfigSourceMissing         a referenced configmap/secret key is not available yet

grpc exceptions never leave :mod:`edgecore.edged.cri`: they are mapped here and
chained with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "CRIError",
    "CRINotFound",
    "CRITimeout",
    "CRIUnavailable",
    "ConfigSourceMissing",
    "EdgedError",
    "ImagePullError",
    "PodSpecError",
]


class EdgedError(Exception):
    """Root of edged's exceptions."""


class CRIError(EdgedError):
    """A CRI call failed.

    Attributes:
        method: the CRI method name, e.g. ``RunPodSandbox``.
        code: the gRPC status code name (``"UNKNOWN"``, ``"NOT_FOUND"``, ...).
        details: the runtime's error text.
    """

    def __init__(self, method: str, code: str, details: str) -> None:
        super().__init__(f"CRI {method} failed: {code}: {details}")
        self.method = method
        self.code = code
        self.details = details


class CRIUnavailable(CRIError):
    """The container runtime is not reachable."""


class CRITimeout(CRIError):
    """A CRI call ran past its deadline."""


class CRINotFound(CRIError):
    """The object named in a CRI call does not exist."""


class ImagePullError(EdgedError):
    """The image is not present and could not (or must not) be pulled."""

    def __init__(self, image: str, reason: str, message: str) -> None:
        super().__init__(f"{image}: {reason}: {message}")
        self.image = image
        self.reason = reason  # kubelet's waiting reason: ErrImagePull / ErrImageNeverPull
        self.message = message


class PodSpecError(EdgedError):
    """The pod spec asks for something edged cannot provide."""


class ConfigSourceMissing(EdgedError):
    """A configmap or secret (or one of its keys) a pod needs is not available."""
