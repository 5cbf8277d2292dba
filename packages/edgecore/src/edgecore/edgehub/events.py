"""Events of the edge hub core (:mod:`edgecore.edgehub.protocol`).

Frozen dataclasses named in the past tense, one per thing that happened in
the core. The asyncio layer (:mod:`edgecore.edgehub.hub`) collects them with
``EdgeHubProtocol.events_received()`` and acts on them: beehive sends, logs,
counters, certificate requests. None of them carries I/O objects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from beehive.message import Message

__all__ = [
    "BackoffElapsed",
    "CertificateInstalled",
    "CertificateRotated",
    "CloudConnected",
    "CloudDisconnected",
    "ConnectionFailed",
    "ControlAnswered",
    "DownstreamDropped",
    "Event",
    "LinkCloseRequested",
    "MessageRouted",
    "ResponseReceived",
    "RotationDeadlineReached",
    "RotationFailed",
    "UpstreamRefused",
]


@dataclass(frozen=True, slots=True)
class BackoffElapsed:
    """The reconnect back-off is over: the asyncio layer should connect now."""


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """A connection attempt failed; the next one is due in ``retry_in`` seconds."""

    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class CloudConnected:
    """The link is up (the ``session``-th since start); the first keepalive is queued."""

    session: int


@dataclass(frozen=True, slots=True)
class CloudDisconnected:
    """The link is gone; the next connection attempt is due in ``retry_in`` seconds
    (0 after a certificate rotation)."""

    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A downstream answer to a pending request (``ctx.send_resp``, protocol.md 1.3)."""

    msg: Message


@dataclass(frozen=True, slots=True)
class MessageRouted:
    """A downstream message goes to every module of group ``target``
    (``to_group``) or to the module ``target``."""

    msg: Message
    target: str
    to_group: bool


@dataclass(frozen=True, slots=True)
class DownstreamDropped:
    """A downstream message has no handler and was dropped."""

    msg: Message
    reason: str


@dataclass(frozen=True, slots=True)
class ControlAnswered:
    """A viaduct control message was answered with ``reply`` (protocol.md 3.5)."""

    msg: Message
    reply: Message


@dataclass(frozen=True, slots=True)
class UpstreamRefused:
    """An upstream message could not be sent. ``reply`` is the ``error``
    response for a synchronous request (send it with ``ctx.send_resp``), None
    for a message nobody waits for (it is dropped)."""

    msg: Message
    reason: str
    reply: Message | None


@dataclass(frozen=True, slots=True)
class CertificateInstalled:
    """A client certificate is in use; it is due for rotation at ``rotation_at``."""

    rotation_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RotationDeadlineReached:
    """Time to ask the cloud for a new certificate (report the outcome with
    ``rotation_succeeded`` or ``rotation_failed``)."""


@dataclass(frozen=True, slots=True)
class RotationFailed:
    """A rotation attempt failed; the next is due in ``retry_in`` seconds."""

    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class CertificateRotated:
    """The certificate was renewed; the link is reconnected with it."""


@dataclass(frozen=True, slots=True)
class LinkCloseRequested:
    """The core wants the current link closed (then call ``connection_lost``)."""

    reason: str


Event = (
    BackoffElapsed
    | ConnectionFailed
    | CloudConnected
    | CloudDisconnected
    | ResponseReceived
    | MessageRouted
    | DownstreamDropped
    | ControlAnswered
    | UpstreamRefused
    | CertificateInstalled
    | RotationDeadlineReached
    | RotationFailed
    | CertificateRotated
    | LinkCloseRequested
)
