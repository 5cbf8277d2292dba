"""Crash-loop back-off, as kubelet's ``flowcontrol.Backoff`` used by ``doBackOff``.

Pure: times are passed in (seconds, any monotonic-compatible epoch; edged uses
wall-clock seconds because container finish times come from the runtime).

Semantics, for one key (pod uid + container name + spec hash):

- a container that exits is restarted at once the first time, and the key's
  delay becomes ``initial`` (kubelet: 10 s);
- on later exits it may restart only ``delay`` seconds after it finished
  (the pod shows ``CrashLoopBackOff`` meanwhile), and each restart doubles the
  delay up to ``maximum`` (kubelet: 5 min);
- a key whose last restart is older than ``2 * maximum`` starts over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class _Entry:
    delay: float
    last_update: float


@dataclass
class Backoff:
    initial: float = 10.0
    maximum: float = 300.0
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.maximum

    def remaining(self, key: str, finished_at: float, now: float) -> float:
        """Seconds ``key`` must still wait after a container that finished at ``finished_at``."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return 0.0
        return max(0.0, entry.delay - (now - finished_at))

    def next(self, key: str, event_time: float) -> float:
        """Record a restart at ``event_time``; returns the delay now in force."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            entry = self._entries[key] = _Entry(self.initial, event_time)
        else:
            entry.delay = min(self.maximum, entry.delay * 2)
            entry.last_update = event_time
        return entry.delay

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
