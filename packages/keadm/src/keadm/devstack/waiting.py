"""Wait for a condition with a deadline: the only way the stack waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["WaitTimeout", "wait_for"]

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold before its deadline.

    Attributes:
        what: the condition, as the message says it.
        last: what the last probe saw (for the error message).
    """

    def __init__(self, what: str, timeout: float, last: str) -> None:
        detail = f"; last seen: {last}" if last else ""
        super().__init__(f"timed out after {timeout:g}s waiting for {what}{detail}")
        self.what = what
        self.last = last


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    what: str,
    timeout: float,
    interval: float = 0.25,
    describe: Callable[[], str] | None = None,
    guard: Callable[[], None] | None = None,
) -> T:
    """Poll ``probe`` until it returns something other than ``None``/``False``.

    Args:
        probe: the check; its exceptions propagate (a probe that may fail
            transiently must catch its own errors and return ``None``).
        what: the condition, for the timeout message.
        timeout: the deadline in seconds.
        interval: pause between probes.
        describe: what to say about the state when the deadline passes.
        guard: called before each probe; raises to stop waiting early (for
            example when the process that should make the condition true died).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if guard is not None:
            guard()
        value = await probe()
        if value is not None and value is not False:
            return value
        if loop.time() >= deadline:
            raise WaitTimeout(what, timeout, describe() if describe else "")
        await asyncio.sleep(interval)
