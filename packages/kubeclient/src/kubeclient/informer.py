"""Informer: one list+watch per resource type, an in-memory cache, and handlers.

Mirrors client-go's shared informer, reduced to what cloudcore needs:

* it consumes :func:`kubeclient.watching.infinite_watch`, so it lists, watches
  from the list's version, relists on ``410 Gone`` and backs off on errors;
* the cache holds raw dicts keyed ``<namespace>/<name>`` (``<name>`` for
  cluster-scoped objects), each with ``apiVersion``/``kind`` set;
* on every (re)list the new snapshot is compared with the cache and the
  differences are delivered as add/update/delete, so a handler never misses a
  change that happened while the watch was broken; an object deleted while
  disconnected is delivered as a delete with its last known state;
* handlers run in order, in the informer's own task, one event at a time: an
  async handler that waits (e.g. on a full beehive queue) holds the stream
  back, which is the back-pressure policy. A handler that raises is logged and
  does not stop the informer.

The cache is updated before the handlers run, so a handler looking up other
objects sees the state that includes the event.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubeclient.client import KubeClient, WatchEvent
from kubeclient.resources import ResourceRef
from kubeclient.watching import Listed, infinite_watch

__all__ = ["EventHandlers", "Informer", "object_key"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AddHandler = Callable[[Obj], Awaitable[None] | None]
UpdateHandler = Callable[[Obj, Obj], Awaitable[None] | None]
DeleteHandler = Callable[[Obj], Awaitable[None] | None]


def object_key(obj: Obj) -> str:
    """``<namespace>/<name>``, or ``<name>`` when the object has no namespace."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = str(meta.get("name") or "")
    return f"{ns}/{name}" if ns else name


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(slots=True)
class EventHandlers:
    """Callbacks for one informer; any may be ``None``; sync or async."""

    on_add: AddHandler | None = None
    on_update: UpdateHandler | None = None
    on_delete: DeleteHandler | None = None


class Informer:
    """Watches one resource type and keeps a cache of it.

    Usage::

        inf = Informer(client, kubeclient.PODS)
        inf.add_handlers(on_add=..., on_update=..., on_delete=...)
        inf.start()
        await inf.wait_synced()
        ...
        await inf.stop()
    """

    def __init__(
        self,
        client: KubeClient,
        ref: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        name: str | None = None,
    ) -> None:
        self.client = client
        self.ref = ref
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.name = name or ref.plural
        self._cache: dict[str, Obj] = {}
        self._handlers: list[EventHandlers] = []
        self._synced = asyncio.Event()
        self._stopper = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: how many times a full list was applied (1 after the first sync)
        self.list_count = 0
        #: the version of the newest event or list applied
        self.resource_version = ""

    # -- handlers and cache ---------------------------------------------------

    def add_handlers(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        """Register callbacks. Add them before :meth:`start` to see the initial adds."""
        self._handlers.append(EventHandlers(on_add, on_update, on_delete))

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        """The cached object, or ``None``."""
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def items(self) -> list[Obj]:
        """A snapshot list of all cached objects."""
        return list(self._cache.values())

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait until the first list is in the cache and its adds were handled.

        Raises:
            TimeoutError: not synced within ``timeout``.
        """
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Spawn the watch task (idempotent)."""
        if self._task is None or self._task.done():
            self._stopper.clear()
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.name}")
        return self._task

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask the watch to end between reads; cancel it if it does not in time."""
        self._stopper.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def run(self) -> None:
        """The informer body: runs until :meth:`stop`."""
        async for item in infinite_watch(
            self.client, self.ref, namespace=self.namespace,
            label_selector=self.label_selector, field_selector=self.field_selector,
            stopper=self._stopper,
        ):
            if isinstance(item, Listed):
                await self._apply_list(item)
            else:
                await self._apply_event(item)

    async def _apply_list(self, listed: Listed) -> None:
        """Make the cache equal to ``listed`` and deliver the differences."""
        self.list_count += 1
        fresh = {object_key(o): o for o in listed.items}
        old = self._cache
        self._cache = dict(fresh)
        self.resource_version = listed.resource_version
        deleted = [o for k, o in old.items() if k not in fresh]
        log.info(
            "informer %s: listed %d objects at rv %s (list #%d, %d gone since last)",
            self.name, len(fresh), listed.resource_version, self.list_count, len(deleted),
        )
        for obj in deleted:
            await self._dispatch("DELETED", obj, None)
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                await self._dispatch("ADDED", obj, None)
            elif _uid(prev) != _uid(obj):
                # Deleted and created again under the same name while we were
                # not watching: that is two events, not an update.
                await self._dispatch("DELETED", prev, None)
                await self._dispatch("ADDED", obj, None)
            elif _rv(prev) != _rv(obj):
                await self._dispatch("MODIFIED", obj, prev)
        self._synced.set()

    async def _apply_event(self, event: WatchEvent) -> None:
        obj = event.object
        key = object_key(obj)
        rv = _rv(obj)
        if rv:
            self.resource_version = rv
        prev = self._cache.get(key)
        if event.type == "DELETED":
            self._cache.pop(key, None)
            await self._dispatch("DELETED", obj, None)
        elif event.type in ("ADDED", "MODIFIED"):
            self._cache[key] = obj
            if prev is None:
                await self._dispatch("ADDED", obj, None)
            else:
                await self._dispatch("MODIFIED", obj, prev)
        else:
            log.debug("informer %s: ignoring event type %s", self.name, event.type)

    async def _dispatch(self, kind: str, obj: Obj, old: Obj | None) -> None:
        for h in self._handlers:
            try:
                result: Awaitable[None] | None = None
                if kind == "ADDED" and h.on_add is not None:
                    result = h.on_add(obj)
                elif kind == "MODIFIED" and h.on_update is not None:
                    assert old is not None
                    result = h.on_update(old, obj)
                elif kind == "DELETED" and h.on_delete is not None:
                    result = h.on_delete(obj)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "informer %s: %s handler failed for %s", self.name, kind, object_key(obj)
                )
