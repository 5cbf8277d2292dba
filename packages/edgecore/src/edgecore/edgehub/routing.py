"""Where a downstream message goes, and what the hub sends up (pure).

Mirrors ``edge/pkg/edgehub/messagehandler/handler*.go`` (protocol.md 1.3) and
``edge/pkg/edgehub/process.go``: no I/O, the hub acts on the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from beehive import constants as c
from beehive.message import Message

__all__ = [
    "CONNECTION_GROUPS",
    "Action",
    "Decision",
    "connection_notice",
    "control_reply",
    "keepalive",
    "route_downstream",
    "to_wire",
]

#: groups told about cloud connect/disconnect (protocol.md 3.8)
CONNECTION_GROUPS = (c.GROUP_META, c.GROUP_TWIN, c.GROUP_EDGED, c.GROUP_BUS)


class Action(Enum):
    RESPOND = "respond"  # a reply to a pending send_sync (ctx.send_resp)
    GROUP = "group"  # to every module of a group
    MODULE = "module"  # to one module
    CONTROL = "control"  # viaduct control message: answer "ack" on the link
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    target: str = ""
    reason: str = ""


def route_downstream(msg: Message) -> Decision:
    """Decide where a message from the cloud goes."""
    if msg.operation in c.CONTROL_OPERATIONS:
        return Decision(Action.CONTROL)
    group = msg.group
    if group in (c.GROUP_RESOURCE, c.GROUP_FUNC):
        if msg.parent_id:
            return Decision(Action.RESPOND)
        return Decision(Action.GROUP, c.GROUP_META)
    if group == c.GROUP_TWIN:
        return Decision(Action.GROUP, c.GROUP_TWIN)
    if group == c.GROUP_USER:
        if msg.parent_id:
            return Decision(Action.RESPOND)
        if msg.source == c.MOD_ROUTER_EVENTBUS:
            return Decision(Action.MODULE, c.MOD_EVENTBUS)
        if msg.source == c.MOD_ROUTER_SERVICEBUS:
            return Decision(Action.MODULE, c.MOD_SERVICEBUS)
        return Decision(Action.DROP, reason=f"no user handler for source {msg.source!r}")
    if group == c.GROUP_TASKMANAGER:
        return Decision(Action.MODULE, "taskmanager")
    return Decision(Action.DROP, reason=f"no handler for group {group!r}")


def control_reply(msg: Message) -> Message:
    """viaduct's automatic answer to config/ping/pong (protocol.md 3.5)."""
    return msg.response(c.CONTENT_ACK)


def keepalive() -> Message:
    """The edge heartbeat (protocol.md 3.7)."""
    return Message.new(
        source=c.MOD_EDGEHUB,
        group=c.GROUP_RESOURCE,
        operation=c.OP_KEEPALIVE,
        resource=c.RT_NODE,
        content=c.CONTENT_PING,
    )


def connection_notice(group: str, connected: bool) -> Message:
    return Message.new(
        source=c.SOURCE_EDGEHUB_NOTICE,
        group=group,
        operation=c.OP_CONNECT,
        resource=c.RESOURCE_NODE_CONNECTION,
        content=c.CLOUD_CONNECTED if connected else c.CLOUD_DISCONNECTED,
    )


def to_wire(msg: Message) -> Message:
    """The copy that goes on the wire: viaduct forces ``sync`` false on every write."""
    out = msg.copy()
    out.header.sync = False
    return out
