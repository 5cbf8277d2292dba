"""beehive: the module framework cloudcore and edgecore are made of.

Public surface: the message model and codec, the context, the module protocol,
the registry and the runtime. Everything else is internal.
"""

from __future__ import annotations

from beehive import codec, constants
from beehive.context import Context
from beehive.exceptions import (
    BeehiveError,
    CodecError,
    ContextClosed,
    ContextError,
    MalformedMessage,
    ModuleFailed,
    PayloadTooBig,
    QueueFull,
    SyncTimeout,
    UnknownGroup,
    UnknownModule,
)
from beehive.message import Message, MessageHeader, MessageRoute, new_msg_id, now_ms
from beehive.module import Module, Registry, RestartPolicy
from beehive.runtime import Runtime, run_process

__all__ = [
    "BeehiveError",
    "CodecError",
    "Context",
    "ContextClosed",
    "ContextError",
    "MalformedMessage",
    "Message",
    "MessageHeader",
    "MessageRoute",
    "Module",
    "ModuleFailed",
    "PayloadTooBig",
    "QueueFull",
    "Registry",
    "RestartPolicy",
    "Runtime",
    "SyncTimeout",
    "UnknownGroup",
    "UnknownModule",
    "codec",
    "constants",
    "new_msg_id",
    "now_ms",
    "run_process",
]
