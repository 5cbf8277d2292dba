"""Exceptions raised by beehive.

::

    BeehiveError
    ├── CodecError                 the wire model (pure)
    │   ├── MalformedMessage       not JSON / wrong shape / wrong types
    │   └── PayloadTooBig          larger than the configured cap
    ├── ContextError               the message context (asyncio layer)
    │   ├── UnknownModule          send to a module that was never registered
    │   ├── UnknownGroup           send to a group with no module
    │   ├── QueueFull              try_send to a full queue
    │   ├── SyncTimeout            send_sync got no answer in time
    │   └── ContextClosed          the context shut down while waiting
    └── ModuleFailed               a module's start() raised and its policy gave up
"""

from __future__ import annotations

__all__ = [
    "BeehiveError",
    "CodecError",
    "ContextClosed",
    "ContextError",
    "MalformedMessage",
    "ModuleFailed",
    "PayloadTooBig",
    "QueueFull",
    "SyncTimeout",
    "UnknownGroup",
    "UnknownModule",
]


class BeehiveError(Exception):
    """Root of every beehive error."""


class CodecError(BeehiveError):
    """A frame could not be turned into a message."""


class MalformedMessage(CodecError):
    """The frame is not a well-formed KubeEdge message."""


class PayloadTooBig(CodecError):
    """The frame exceeds the size cap; it was not parsed."""

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the cap of {max_size} bytes")
        self.size = size
        self.max_size = max_size


class ContextError(BeehiveError):
    """A message could not be delivered through the context."""


class UnknownModule(ContextError):
    pass


class UnknownGroup(ContextError):
    pass


class QueueFull(ContextError):
    pass


class SyncTimeout(ContextError, TimeoutError):
    """No response with the matching parent id arrived before the deadline."""


class ContextClosed(ContextError):
    """The context was closed; pending waiters are failed with this."""


class ModuleFailed(BeehiveError):
    """A module crashed and its restart policy does not restart it."""
