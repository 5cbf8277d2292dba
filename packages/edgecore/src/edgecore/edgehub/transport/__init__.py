"""Cloud links: one thin adapter per transport (WebSocket, QUIC).

Each link carries whole beehive messages both ways and offers the same small
surface, :class:`CloudLink`; the hub does not know which one it holds.
"""

from __future__ import annotations

from typing import Protocol

from beehive.message import Message

__all__ = ["CloudLink"]


class CloudLink(Protocol):
    transport: str

    async def send(self, msg: Message) -> None:
        """Write one message; raises ``LinkError`` when the link is closed."""
        ...

    async def recv(self) -> Message:
        """The next message; raises ``MalformedFrame`` or ``LinkError``."""
        ...

    async def close(self) -> None:
        """Close the link; idempotent."""
        ...
