"""Watching a resource type in three layers (style.md rule 23, after kopf).

1. :meth:`kubeclient.KubeClient.watch`: one request, server ``timeoutSeconds``,
   inactivity timeout, stopper.
2. :func:`continuous_watch`: list (paged) and emit a :class:`Listed` marker with
   the full state, then watch from the list's resourceVersion, keep the newest
   version (bookmarks included), re-watch from it when a request ends or fails
   transiently, and return on ``410 Gone`` so that the caller relists.
3. :func:`infinite_watch`: never returns (until the stopper fires); relists
   after ``Gone`` at once and after any other failure with back-off.

Consumers must treat a :class:`Listed` as "this is now the complete state"
(the informer turns it into synthesised add/update/delete deltas).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kubeclient import errors
from kubeclient.client import KubeClient, WatchEvent
from kubeclient.resources import ResourceRef

__all__ = ["Listed", "continuous_watch", "infinite_watch", "list_all"]

log = logging.getLogger(__name__)

_TRANSIENT = (errors.ApiConnectionError, errors.ServerError, errors.TooManyRequests,
              errors.WatchError)


@dataclass(frozen=True, slots=True)
class Listed:
    """The complete state of the watched collection at ``resource_version``."""

    items: list[dict[str, Any]] = field(default_factory=list)
    resource_version: str = ""


def with_type(obj: dict[str, Any], ref: ResourceRef) -> dict[str, Any]:
    """Set ``apiVersion``/``kind`` (list items come without them); in place."""
    obj.setdefault("apiVersion", ref.api_version)
    obj.setdefault("kind", ref.kind)
    return obj


async def list_all(
    client: KubeClient,
    ref: ResourceRef,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    page_size: int | None = None,
) -> Listed:
    """List every object, following ``continue`` tokens.

    If a continue token expires mid-way (410), the list restarts without paging,
    so the result is always one consistent snapshot.
    """
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        try:
            page = await client.list(
                ref, namespace, label_selector, field_selector,
                limit=page_size, continue_=token,
            )
        except errors.Gone:
            if token is None:
                raise
            log.info("list %s: continue token expired, listing again unpaged", ref.plural)
            page_size, token, items = None, None, []
            continue
        items.extend(with_type(i, ref) for i in page.get("items") or [])
        meta = page.get("metadata") or {}
        token = meta.get("continue") or None
        if not token:
            return Listed(items, str(meta.get("resourceVersion") or ""))


async def continuous_watch(
    client: KubeClient,
    ref: ResourceRef,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    stopper: asyncio.Event | None = None,
) -> AsyncIterator[Listed | WatchEvent]:
    """List, then watch from the list's version; return on ``410 Gone``.

    Bookmarks only advance the version and are not yielded. Transient watch
    failures (connection lost, 5xx, 429, inactivity) re-watch from the newest
    version after a back-off; other errors propagate.
    """
    ws = client.settings.watch
    listed = await list_all(
        client, ref, namespace=namespace, label_selector=label_selector,
        field_selector=field_selector, page_size=ws.list_page_size,
    )
    yield listed
    rv = listed.resource_version
    failures = 0
    loop = asyncio.get_running_loop()
    while stopper is None or not stopper.is_set():
        started, events = loop.time(), 0
        try:
            async for event in client.watch(
                ref, namespace, label_selector, field_selector,
                resource_version=rv, stopper=stopper,
            ):
                failures, events = 0, events + 1
                new_rv = (event.object.get("metadata") or {}).get("resourceVersion")
                if new_rv:
                    rv = str(new_rv)
                if event.type == "BOOKMARK":
                    continue
                yield WatchEvent(event.type, with_type(event.object, ref))
        except errors.Gone:
            log.info("watch %s: resourceVersion %s is gone; relisting", ref.plural, rv)
            return
        except _TRANSIENT as exc:
            delay = ws.reconnect_backoffs[min(failures, len(ws.reconnect_backoffs) - 1)]
            failures += 1
            log.warning(
                "watch %s from rv %s failed (%s), re-watching in %.1fs", ref.plural, rv, exc, delay
            )
            if await _stopped_within(stopper, delay):
                return
            continue
        if events == 0 and loop.time() - started < ws.min_watch_duration:
            # A server that ends every watch at once must not be hammered.
            delay = ws.reconnect_backoffs[min(failures, len(ws.reconnect_backoffs) - 1)]
            failures += 1
            if await _stopped_within(stopper, delay):
                return


async def infinite_watch(
    client: KubeClient,
    ref: ResourceRef,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    stopper: asyncio.Event | None = None,
) -> AsyncIterator[Listed | WatchEvent]:
    """:func:`continuous_watch` forever: relist on Gone, back off on errors.

    Ends only when ``stopper`` is set (or the consumer stops iterating).
    """
    ws = client.settings.watch
    failures = 0
    while stopper is None or not stopper.is_set():
        try:
            async for item in continuous_watch(
                client, ref, namespace=namespace, label_selector=label_selector,
                field_selector=field_selector, stopper=stopper,
            ):
                failures = 0
                yield item
            continue  # Gone (or stopped): relist at once
        except (errors.KubeClientError, OSError) as exc:
            delay = ws.reconnect_backoffs[min(failures, len(ws.reconnect_backoffs) - 1)]
            failures += 1
            log.warning("list/watch %s failed (%s); retrying in %.1fs", ref.plural, exc, delay)
            if await _stopped_within(stopper, delay):
                return


async def _stopped_within(stopper: asyncio.Event | None, delay: float) -> bool:
    """Sleep ``delay`` seconds, waking early if the stopper fires; True if stopped."""
    if stopper is None:
        await asyncio.sleep(delay)
        return False
    try:
        async with asyncio.timeout(delay):
            await stopper.wait()
    except TimeoutError:
        return False
    return True
