"""Object storage with a global, monotonically increasing resourceVersion and a
watch history: the role etcd and the watch cache play in kube-apiserver
(k8s.io/apiserver/pkg/storage/cacher/watch_cache.go, cache_watcher.go).

Invariants:
- Stored object dicts are never mutated after ``put``; writers always store a new dict.
  That lets watch fan-out hand the same object (and its encoded JSON line, computed once)
  to every watcher without copying.
- Every write takes the next resourceVersion, records one ``StoredEvent`` in the history
  and delivers it synchronously to the watchers of that kind, all without an ``await``
  in between, so each watcher sees every event exactly once, in resourceVersion order.
- Watching from a resourceVersion older than the history window raises ``Expired``
  (the caller turns it into a 410 ``ERROR`` watch event, as kube-apiserver does).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from devkube.errors import DevKubeError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds

# Each retained event holds its object (and the previous version): 20k events of ~2 KB
# objects bound the history to tens of MB. Older resourceVersions answer 410.
DEFAULT_HISTORY = 20_000
# A watcher that falls this many events behind is closed (kube-apiserver also closes
# slow watchers); the client relists or resumes from its last resourceVersion.
DEFAULT_WATCH_QUEUE = 10_000


class Expired(DevKubeError):
    """A watch asked for a resourceVersion that has been compacted away."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class StoredEvent:
    type: str  # ADDED | MODIFIED | DELETED
    rv: int
    resource: str
    namespace: str
    obj: Obj
    prev: Obj | None = None
    _lines: dict[str, bytes] = field(default_factory=dict)

    def line(self, type_: str | None = None) -> bytes:
        """The encoded watch event (cached per type: selector transitions rename it)."""
        t = type_ or self.type
        cached = self._lines.get(t)
        if cached is None:
            cached = (dumps({"type": t, "object": self.obj}) + "\n").encode()
            self._lines[t] = cached
        return cached


class Backend(Protocol):
    """Durable storage behind the in-memory maps (see persist.SqliteBackend)."""

    def load(self) -> tuple[int, list[tuple[str, str, str, Obj]]]: ...
    def put(self, resource: str, namespace: str, name: str, obj: Obj, rv: int) -> None: ...
    def delete(self, resource: str, namespace: str, name: str, rv: int) -> None: ...
    def close(self) -> None: ...


class Watcher:
    """One watch stream: a bounded queue of events (policy: close on overflow)."""

    def __init__(
        self,
        resource: str,
        namespace: str | None,
        match: Callable[[Obj], bool] | None,
        *,
        maxsize: int = DEFAULT_WATCH_QUEUE,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.match = match
        self.queue: asyncio.Queue[tuple[str, StoredEvent] | None] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def offer(self, event: StoredEvent) -> None:
        """Queue ``event`` if it concerns this watcher (translating selector transitions)."""
        if self.closed:
            return
        if self.namespace is not None and event.namespace != self.namespace:
            return
        kind = event.type
        if self.match is not None:
            now = self.match(event.obj)
            if event.type == "MODIFIED":
                before = event.prev is not None and self.match(event.prev)
                if now and not before:
                    kind = "ADDED"
                elif before and not now:
                    kind = "DELETED"
                elif not now:
                    return
            elif not now:
                return
        self._put((kind, event))

    def _put(self, item: tuple[str, StoredEvent] | None) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.closed = True
            log.warning("watch on %s fell behind; closing it", self.resource)
            # Drop everything not yet sent and end the stream: the client resumes from the
            # last resourceVersion it received (replayed from history, or 410 and relist).
            # Dropping only some queued events would lose them for good.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._put(None)


class Store:
    """In-memory objects per kind, the RV counter, the watch history and the watchers."""

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        history: int = DEFAULT_HISTORY,
        watch_queue: int = DEFAULT_WATCH_QUEUE,
    ) -> None:
        self._watch_queue = watch_queue
        # resource -> namespace -> name -> object: namespace-scoped reads and counts
        # (namespace cascades, per-namespace lists) cost O(objects in that namespace).
        self._objects: dict[str, dict[str, dict[str, Obj]]] = {}
        self._watchers: dict[str, set[Watcher]] = {}
        self._history: deque[StoredEvent] = deque()
        self._history_max = history
        self._backend = backend
        self.rv = 1
        if backend is not None:
            rv, rows = backend.load()
            self.rv = max(rv, 1)
            for resource, namespace, name, obj in rows:
                self._objects.setdefault(resource, {}).setdefault(namespace, {})[name] = obj
        # Events with rv > compacted are all in the history.
        self.compacted = self.rv

    # -- reads --------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        by_ns = self._objects.get(resource)
        if by_ns is None:
            return None
        names = by_ns.get(namespace)
        return None if names is None else names.get(name)

    def items(self, resource: str, namespace: str | None = None) -> Iterator[tuple[Key, Obj]]:
        by_ns = self._objects.get(resource, {})
        if namespace is None:
            for ns, names in list(by_ns.items()):
                for name, obj in list(names.items()):
                    yield (ns, name), obj
        else:
            for name, obj in list(by_ns.get(namespace, {}).items()):
                yield (namespace, name), obj

    def count(self, resource: str, namespace: str | None = None) -> int:
        by_ns = self._objects.get(resource, {})
        if namespace is None:
            return sum(len(names) for names in by_ns.values())
        return len(by_ns.get(namespace, ()))

    def resources(self) -> list[str]:
        return [r for r in self._objects if self.count(r)]

    # -- writes -------------------------------------------------------------------------

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, resource: str, namespace: str, name: str, obj: Obj) -> StoredEvent:
        """Store ``obj`` (whose metadata.resourceVersion the caller already set from
        ``next_rv()``) and publish ADDED or MODIFIED."""
        rv = int(obj["metadata"]["resourceVersion"])
        names = self._objects.setdefault(resource, {}).setdefault(namespace, {})
        prev = names.get(name)
        names[name] = obj
        if self._backend is not None:
            self._backend.put(resource, namespace, name, obj, rv)
        kind = "ADDED" if prev is None else "MODIFIED"
        ev = StoredEvent(kind, rv, resource, namespace, obj, prev)
        self._publish(ev)
        return ev

    def remove(self, resource: str, namespace: str, name: str, final: Obj) -> StoredEvent:
        """Remove an object; ``final`` is its last state carrying the deletion's RV."""
        rv = int(final["metadata"]["resourceVersion"])
        by_ns = self._objects.get(resource, {})
        names = by_ns.get(namespace)
        prev = None
        if names is not None:
            prev = names.pop(name, None)
            if not names:
                del by_ns[namespace]
        if self._backend is not None:
            self._backend.delete(resource, namespace, name, rv)
        # prev (the state before deletion) lets snapshot() undo the deletion.
        ev = StoredEvent("DELETED", rv, resource, namespace, final, prev)
        self._publish(ev)
        return ev

    def _publish(self, ev: StoredEvent) -> None:
        self._history.append(ev)
        if len(self._history) > self._history_max:
            dropped = self._history.popleft()
            self.compacted = dropped.rv
        for w in list(self._watchers.get(ev.resource, ())):
            w.offer(ev)

    # -- watch --------------------------------------------------------------------------

    def watch(
        self,
        resource: str,
        namespace: str | None,
        match: Callable[[Obj], bool] | None,
        since: int | None,
    ) -> Watcher:
        """Register a watcher. With ``since``, first queue the history after it (raising
        ``Expired`` when compacted); without, queue ADDED for every current object."""
        initial: list[StoredEvent] = []
        if since is None:
            for (ns, _), obj in self.items(resource, namespace):
                if match is None or match(obj):
                    rv = int(obj["metadata"]["resourceVersion"])
                    initial.append(StoredEvent("ADDED", rv, resource, ns, obj))
        else:
            if since < self.compacted:
                raise Expired(since, self.compacted)
            if since > self.rv:
                # A resourceVersion from the future: the client saw another incarnation of
                # an in-memory devkube. kube-apiserver would wait and answer 504 "Too large
                # resource version"; 410 makes every client relist, which is the recovery.
                raise Expired(since, self.compacted)
            # History is RV-ordered: replay what came after ``since``.
            initial = [ev for ev in self._iter_history_after(since) if ev.resource == resource]
        w = Watcher(resource, namespace, match, maxsize=self._watch_queue + len(initial))
        for ev in initial:
            w.offer(ev)
        self._watchers.setdefault(resource, set()).add(w)
        return w

    def _iter_history_after(self, since: int) -> Iterator[StoredEvent]:
        hist = self._history
        if not hist or hist[-1].rv <= since:
            return
        # Binary search over the deque (indexable) for the first rv > since.
        lo, hi = 0, len(hist)
        while lo < hi:
            mid = (lo + hi) // 2
            if hist[mid].rv <= since:
                lo = mid + 1
            else:
                hi = mid
        for i in range(lo, len(hist)):
            yield hist[i]

    def snapshot(self, resource: str, namespace: str | None, at: int) -> dict[Key, Obj]:
        """The objects of ``resource`` as they were at resourceVersion ``at``: today's,
        with every later event undone from the history (consistent list pages, and
        lists at an exact resourceVersion). Raises ``Expired`` when compacted away."""
        if at < self.compacted or at > self.rv:
            raise Expired(at, self.compacted)
        state = dict(self.items(resource, namespace))
        for ev in reversed(self._history):
            if ev.rv <= at:
                break
            if ev.resource != resource or (namespace is not None and ev.namespace != namespace):
                continue
            key = (ev.namespace, ev.obj["metadata"]["name"])
            if ev.type == "ADDED" or ev.prev is None:
                state.pop(key, None)
            else:
                state[key] = ev.prev
        return state

    def unwatch(self, w: Watcher) -> None:
        self._watchers.get(w.resource, set()).discard(w)
        w.closed = True

    def close_watchers(self, resource: str | None = None) -> None:
        for res, ws in list(self._watchers.items()):
            if resource is None or res == resource:
                for w in list(ws):
                    w.close()

    def compact(self, rv: int | None = None) -> int:
        """Forget history up to ``rv`` (default: everything); watches from older RVs
        then get 410 Expired. Returns the new compaction point."""
        target = self.rv if rv is None else min(rv, self.rv)
        while self._history and self._history[0].rv <= target:
            self._history.popleft()
        self.compacted = max(self.compacted, target)
        return self.compacted

    def close(self) -> None:
        self.close_watchers()
        if self._backend is not None:
            self._backend.close()
