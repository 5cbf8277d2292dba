"""Token bucket for upstream messages (pure, time injected).

KubeEdge's edgehub limits what it sends to the cloud with a token bucket of
``messageQPS`` tokens per second and ``messageBurst`` capacity
(``edge/pkg/edgehub/edgehub.go``; protocol.md 3.7). Policy when empty: the
sender waits (back-pressure up the beehive queue), nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: int
    _tokens: float = -1.0
    _last: float | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("messageQPS must be > 0 and messageBurst >= 1")
        self._tokens = float(self.burst)

    def take(self, now: float) -> float:
        """Take one token; return 0 if one was available, else the wait in seconds.

        A positive return means the caller must wait that long and call again.
        """
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate
