"""Hand cloud objects to a local module without ever blocking metamanager.

metamanager must keep reading (acks, connection notices, edge requests) even
when edged is slow; but a message it has acked must not be lost, because the
cloud will not send it again. Policy: **coalesce by key**. Pending messages
are kept per resource (``<ns>/<type>/<name>``); a newer message for the same
object replaces the older one, since each carries the whole object (a delete
replaces an update, as the latest state). The buffer is therefore bounded by
the number of distinct objects the cloud has for this node. One task delivers
them in first-pending order with the blocking ``ctx.send``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from beehive.context import Context
from beehive.exceptions import ContextClosed
from beehive.message import Message

__all__ = ["Forwarder"]

log = logging.getLogger(__name__)


class Forwarder:
    def __init__(self, ctx: Context, module: str) -> None:
        self._ctx = ctx
        self._module = module
        self._pending: OrderedDict[str, Message] = OrderedDict()
        self._ready = asyncio.Event()
        #: messages replaced before delivery (an operator metric)
        self.coalesced = 0

    def put(self, msg: Message) -> None:
        key = msg.resource
        if key in self._pending:
            self.coalesced += 1
            log.debug("forward to %s: %s replaces a pending message", self._module, key)
        self._pending[key] = msg
        self._pending.move_to_end(key)
        self._ready.set()

    def __len__(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            while self._pending:
                _, msg = self._pending.popitem(last=False)
                try:
                    await self._ctx.send(self._module, msg)
                except ContextClosed:
                    return
            self._ready.clear()
