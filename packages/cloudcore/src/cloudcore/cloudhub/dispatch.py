"""What cloudhub does with one upstream message: the rules, without the I/O.

Mirrors KubeEdge's ``DispatchUpstream`` in
``cloud/pkg/cloudhub/dispatcher/message_dispatcher.go`` (protocol.md 4.1),
checked in this order:

1. op ``keepalive``: refresh the node's keepalive timer;
2. op ``response``: an ack (``parent_msg_id`` = the msg_id we sent);
3. op ``error``: logged only, never an ack;
4. op ``upload`` in group ``user``: prefixed and sent to the ``router`` module;
5. op ``prepull``/``upgrade``/``UpdateNodeActionStatus``: to group ``taskmanager``;
6. resource exactly ``k8s/ca.crt``: cloudhub answers with the cluster CA;
7. anything else: the resource gets ``node/<id>/`` and the message is published
   to group ``devicecontroller`` (source ``twin``), ``dynamiccontroller``
   (source ``metaserver``) or ``edgecontroller``.

The volume-pattern rule of KubeEdge (CSI sync replies) is not implemented: we
have no CSI driver, so such a message falls through to rule 7.

Pure: :func:`decide` returns an action; :mod:`cloudcore.cloudhub.sessions`
carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from beehive.constants import (
    GROUP_DEVICECONTROLLER,
    GROUP_DYNAMICCONTROLLER,
    GROUP_EDGECONTROLLER,
    GROUP_RESOURCE,
    GROUP_TASKMANAGER,
    GROUP_USER,
    MOD_CLOUDHUB,
    MOD_ROUTER,
    MOD_TWIN,
    OP_ERROR,
    OP_KEEPALIVE,
    OP_RESPONSE,
    OP_UPLOAD,
    RESOURCE_K8S_CA,
    SOURCE_METASERVER,
)
from beehive.message import Message, MessageHeader, MessageRoute, new_msg_id, now_ms
from kecommon.resources import add_node_prefix

__all__ = [
    "TASK_OPERATIONS",
    "Ack",
    "Action",
    "AnswerClusterCA",
    "Keepalive",
    "LogError",
    "Publish",
    "SendToModule",
    "ca_response",
    "decide",
    "prefixed",
]

TASK_OPERATIONS: Final = frozenset({"prepull", "upgrade", "UpdateNodeActionStatus"})


@dataclass(frozen=True, slots=True)
class Keepalive:
    pass


@dataclass(frozen=True, slots=True)
class Ack:
    parent_msg_id: str


@dataclass(frozen=True, slots=True)
class LogError:
    msg: Message


@dataclass(frozen=True, slots=True)
class SendToModule:
    """Send ``msg`` (already prefixed) to one beehive module."""

    module: str
    msg: Message


@dataclass(frozen=True, slots=True)
class Publish:
    """Send ``msg`` (already prefixed) to every module of ``group``."""

    group: str
    msg: Message


@dataclass(frozen=True, slots=True)
class AnswerClusterCA:
    request: Message


Action = Keepalive | Ack | LogError | SendToModule | Publish | AnswerClusterCA


def prefixed(node_id: str, msg: Message) -> Message:
    """A copy of ``msg`` whose resource has ``node/<id>/`` (PubToController)."""
    out = msg.copy()
    out.route.resource = add_node_prefix(node_id, msg.resource)
    return out


def decide(node_id: str, msg: Message) -> Action:
    """The action for one admitted upstream message from ``node_id``."""
    op = msg.operation
    if op == OP_KEEPALIVE:
        return Keepalive()
    if op == OP_RESPONSE:
        return Ack(msg.parent_id)
    if op == OP_ERROR:
        return LogError(msg)
    if op == OP_UPLOAD and msg.group == GROUP_USER:
        return SendToModule(MOD_ROUTER, prefixed(node_id, msg))
    if op in TASK_OPERATIONS:
        return Publish(GROUP_TASKMANAGER, prefixed(node_id, msg))
    if msg.resource == RESOURCE_K8S_CA:
        return AnswerClusterCA(msg)
    if msg.source == MOD_TWIN:
        group = GROUP_DEVICECONTROLLER
    elif msg.source == SOURCE_METASERVER:
        group = GROUP_DYNAMICCONTROLLER
    else:
        group = GROUP_EDGECONTROLLER
    return Publish(group, prefixed(node_id, msg))


def ca_response(node_id: str, request: Message, ca: str) -> Message:
    """cloudhub's own answer to ``k8s/ca.crt`` (route as KubeEdge builds it).

    The resource is the internal ``node/<id>/k8s/ca.crt``; it is trimmed on the
    wire like every downstream message.
    """
    return Message(
        header=MessageHeader(msg_id=new_msg_id(), parent_msg_id=request.msg_id, timestamp=now_ms()),
        route=MessageRoute(
            source=MOD_CLOUDHUB,
            group=GROUP_RESOURCE,
            operation=OP_RESPONSE,
            resource=add_node_prefix(node_id, RESOURCE_K8S_CA),
        ),
        content=ca,
    )
