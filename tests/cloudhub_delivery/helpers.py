"""Message builders shared by the cloudhub delivery tests."""

from __future__ import annotations

from typing import Any

from beehive.message import Message

NODE = "edge-1"


def obj(
    kind: str = "ConfigMap",
    *,
    name: str = "cm",
    namespace: str = "default",
    uid: str = "uid-1",
    rv: str = "10",
    deleting: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid, "resourceVersion": rv}
    if namespace != "null":
        meta["namespace"] = namespace
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **extra}


def down(
    operation: str = "update",
    *,
    rtype: str = "configmap",
    name: str = "cm",
    namespace: str = "default",
    uid: str = "uid-1",
    rv: str = "10",
    node: str = NODE,
    source: str = "edgecontroller",
    group: str = "resource",
    content: Any = "__object__",
    parent: str = "",
    deleting: bool = False,
) -> Message:
    """A downstream message as a cloud controller sends it to cloudhub."""
    kind = {"configmap": "ConfigMap", "pod": "Pod", "secret": "Secret", "node": "Node"}.get(
        rtype, rtype.title()
    )
    if content == "__object__":
        content = obj(kind, name=name, namespace=namespace, uid=uid, rv=rv, deleting=deleting)
    return Message.new(
        source=source,
        group=group,
        operation=operation,
        resource=f"node/{node}/{namespace}/{rtype}/{name}",
        content=content,
        resource_version=rv,
        parent_msg_id=parent,
    )


def up(
    operation: str,
    resource: str,
    *,
    source: str = "edged",
    group: str = "meta",
    content: Any = None,
    parent: str = "",
) -> Message:
    """An upstream message as an edge sends it (unprefixed resource)."""
    return Message.new(
        source=source,
        group=group,
        operation=operation,
        resource=resource,
        content=content,
        parent_msg_id=parent,
    )


def ack_of(msg: Message) -> Message:
    """The edge's ack: NewRespByMessage(msg, "OK") on the wire resource."""
    reply = msg.response("OK")
    reply.route.resource = (
        msg.resource.split("/", 2)[2] if msg.resource.startswith("node/") else (msg.resource)
    )
    return reply
