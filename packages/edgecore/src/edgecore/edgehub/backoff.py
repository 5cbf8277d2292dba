"""Jittered exponential back-off for reconnects and certificate retries (pure).

Each delay is drawn uniformly from ``[d/2, d]`` where ``d`` doubles from
``initial`` up to ``maximum`` ("equal jitter"): many edges that lost the same
cloud do not all come back in the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(slots=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling."""
        ceiling = min(self.maximum, self.initial * 2**self.attempts)
        self.attempts += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
