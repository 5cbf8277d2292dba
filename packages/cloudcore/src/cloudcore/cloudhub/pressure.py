"""Delivery pressure: lets background work yield to delivery during bursts.

The ObjectSync record writer and delivery share one event loop (and, on a small
machine, the CPUs with the API server that serves the writes). During a burst
of 10,000 new pods the writer's 20,000 API calls took the largest share of
cloudcore's CPU and delayed the pods on their way to the edges
(docs/performance.md, "delivery"). The records only have to be written
eventually (the synccontroller resends from them; a record missing for a while
costs nothing while the session is up), so the writer keeps a few workers going
all the time, which bounds how far it falls behind, and lets the rest wait until
delivery has been quiet for ``quiet`` seconds.

Delivery "activity" is noted by the session manager on every downstream message
it routes and every ack it receives: one clock read each, no task, no event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["DEFAULT_QUIET", "DeliveryPressure"]

#: seconds without delivery activity after which background work runs at full speed
DEFAULT_QUIET = 0.25


class DeliveryPressure:
    """When delivery last did something, and a wait for it to go quiet."""

    def __init__(
        self, quiet: float = DEFAULT_QUIET, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.quiet = quiet
        self._clock = clock
        self._last = float("-inf")

    def note(self) -> None:
        """Delivery did something (a message routed, an ack received)."""
        self._last = self._clock()

    @property
    def busy(self) -> bool:
        return self._clock() - self._last < self.quiet

    async def wait_calm(self) -> None:
        """Return once delivery has been quiet for ``quiet`` seconds.

        Sleeps for the remaining quiet time and checks again, so a waiter wakes
        at most once per ``quiet`` period during a burst and never otherwise.
        """
        while True:
            remaining = self._last + self.quiet - self._clock()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)
