"""The loops the cloud controllers share: feed upstream messages to keyed
workers, and supervise the module's tasks.

edgecontroller and devicecontroller both receive upstream messages from their
beehive queue and handle them in order per node (:class:`KeyedWorkers`), and
both run a few named tasks of which the receiver is the one that ends the
module: when it returns (the context closed) the module is done; when any task
dies the module dies with it, so the beehive runtime stops the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from beehive.context import Context
from beehive.exceptions import ContextClosed
from beehive.message import Message
from cloudcore.keyedworkers import KeyedWorkers

__all__ = ["receive_into_workers", "supervise"]


async def receive_into_workers(
    ctx: Context,
    module: str,
    workers: KeyedWorkers,
    *,
    handle: Callable[[Message], Awaitable[None]],
    key: Callable[[Message], str],
) -> None:
    """Hand every message of ``module``'s queue to ``handle``, serialised per ``key``.

    Returns when the context closes.
    """
    while True:
        try:
            msg = await ctx.receive(module)
        except ContextClosed:
            return

        async def job(m: Message = msg) -> None:
            await handle(m)

        await workers.submit(key(msg), job)


async def supervise(tasks: Iterable[asyncio.Task[Any]], *, main: asyncio.Task[Any]) -> None:
    """Wait until ``main`` ends; raise as soon as any task (``main`` included) fails.

    Raises:
        RuntimeError: a task died; its exception is the cause.
    """
    pending = {*tasks, main}
    while main in pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} died") from task.exception()
