"""The beehive message model, identical on the wire to KubeEdge's.

Mirrors ``staging/src/github.com/kubeedge/beehive/pkg/core/model/message.go``
(protocol.md section 1). This module is pure: no I/O, no asyncio, no clock
except where a caller does not inject one (``now_ms``).

A :class:`Message` has a header (ids, timestamp, resourceVersion), a route
(source, group, operation, resource) and a JSON ``content`` that may be an
object, a list, a string, a number, a bool or ``None``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Message",
    "MessageHeader",
    "MessageRoute",
    "new_msg_id",
    "now_ms",
]


def new_msg_id() -> str:
    """A fresh message id: a random UUID, as KubeEdge's ``uuid.New()``."""
    return str(uuid.uuid4())


def now_ms() -> int:
    """Milliseconds since the epoch, the unit of ``header.timestamp``."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class MessageHeader:
    msg_id: str = ""
    parent_msg_id: str = ""
    timestamp: int = 0
    resource_version: str = ""
    sync: bool = False
    # beehive context type ("channel" / "unixpacket"); empty means channel.
    type: str = ""


@dataclass(slots=True)
class MessageRoute:
    source: str = ""
    destination: str = ""
    group: str = ""
    operation: str = ""
    resource: str = ""


@dataclass(slots=True)
class Message:
    header: MessageHeader = field(default_factory=MessageHeader)
    route: MessageRoute = field(default_factory=MessageRoute)
    content: Any = None

    # -- construction -------------------------------------------------------

    @classmethod
    def new(
        cls,
        *,
        source: str,
        group: str,
        operation: str,
        resource: str,
        content: Any = None,
        parent_msg_id: str = "",
        resource_version: str = "",
        timestamp: int | None = None,
    ) -> Message:
        """Build a message with a new id and the current time (``NewMessage``)."""
        return cls(
            header=MessageHeader(
                msg_id=new_msg_id(),
                parent_msg_id=parent_msg_id,
                timestamp=now_ms() if timestamp is None else timestamp,
                resource_version=resource_version,
            ),
            route=MessageRoute(source=source, group=group, operation=operation, resource=resource),
            content=content,
        )

    def response(self, content: Any, *, operation: str = "response") -> Message:
        """The reply KubeEdge's ``NewRespByMessage`` builds.

        New id, parent = this id, source, group and resource copied, operation
        ``response``, type copied.
        """
        return Message(
            header=MessageHeader(
                msg_id=new_msg_id(),
                parent_msg_id=self.header.msg_id,
                timestamp=now_ms(),
                type=self.header.type,
            ),
            route=MessageRoute(
                source=self.route.source,
                group=self.route.group,
                operation=operation,
                resource=self.route.resource,
            ),
            content=content,
        )

    def error_response(self, text: str) -> Message:
        """The reply KubeEdge's ``NewErrorMessage`` builds.

        Operation ``error``, resource copied, source and group left empty (the
        caller may set them), content the error text.
        """
        return Message(
            header=MessageHeader(
                msg_id=new_msg_id(),
                parent_msg_id=self.header.msg_id,
                timestamp=now_ms(),
                type=self.header.type,
            ),
            route=MessageRoute(operation="error", resource=self.route.resource),
            content=text,
        )

    def copy(self) -> Message:
        """A copy of header and route; the content is shared, not deep-copied."""
        h, r = self.header, self.route
        return Message(
            header=MessageHeader(
                h.msg_id, h.parent_msg_id, h.timestamp, h.resource_version, h.sync, h.type
            ),
            route=MessageRoute(r.source, r.destination, r.group, r.operation, r.resource),
            content=self.content,
        )

    # -- accessors named after KubeEdge's getters --------------------------

    @property
    def msg_id(self) -> str:
        return self.header.msg_id

    @property
    def parent_id(self) -> str:
        return self.header.parent_msg_id

    @property
    def resource(self) -> str:
        return self.route.resource

    @property
    def operation(self) -> str:
        return self.route.operation

    @property
    def source(self) -> str:
        return self.route.source

    @property
    def group(self) -> str:
        return self.route.group

    @property
    def resource_version(self) -> str:
        return self.header.resource_version

    def is_response(self) -> bool:
        return bool(self.header.parent_msg_id)

    def describe(self) -> str:
        """A short one-line description for logs."""
        r = self.route
        return (
            f"msg_id={self.header.msg_id} parent={self.header.parent_msg_id or '-'} "
            f"{r.source}/{r.group} {r.operation} {r.resource}"
        )
