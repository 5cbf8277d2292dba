"""metamanager: beehive module ``metamanager`` (group ``meta``).

Mirrors ``edge/pkg/metamanager/process.go`` (protocol.md 4.5, 6.5):

From the cloud (source edgecontroller, devicecontroller, ...): insert, update
and patch are stored, delete removes the key (for a pod also its ``podpatch``
key, and only when the UID matches); then the message is acked upstream with
``msg.response("OK")`` and forwarded unchanged to ``edged`` (pods, configmaps,
secrets) or, re-routed to source ``meta`` / group ``twin``, to devicetwin
(devices). Node updates are stored, not forwarded.

From the edge (edged through :class:`edgecore.metaclient.MetaClient`):
configmap/secret queries are answered from the store, else asked from the
cloud; other queries, and writes, go to the cloud with a new msg id through
``send_sync`` to the hub; the answer is stored (configmap, secret, node, lease,
token), acked when the request was a query/insert/update (as the capture shows
KubeEdge does), and returned. While the cloud is away, queries are answered
from the store and writes fail with 503; status patches (nodepatch, podpatch)
are kept, the latest per object winning, and sent when the cloud returns.

Cloud messages are handled in arrival order, one at a time; edge requests run
concurrently (bounded), because each may wait up to ``remoteQueryTimeout``.
The receive loop never waits for a request slot: a request takes its slot in
its own task, so cloud pushes and connection notices are handled at once even
while every slot waits on a silent cloud. At most ``max_queued_requests`` wait
for a slot; a request beyond that is answered at once with 429 TooManyRequests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from beehive import constants as c
from beehive.context import Context
from beehive.exceptions import ContextClosed, ContextError, SyncTimeout
from beehive.message import Message, new_msg_id
from edgecore.metamanager import shapes
from edgecore.metamanager.forwarding import Forwarder
from edgecore.metamanager.settings import MetaSettings
from edgecore.metamanager.store import MetaStore, PendingPatch, StoreError
from kecommon.resources import ResourceError, ResourcePath, parse_edge_resource

__all__ = ["CLOUD_SOURCES", "MetaManager"]

log = logging.getLogger(__name__)

CLOUD_SOURCES = frozenset(
    {
        c.MOD_EDGECONTROLLER,
        c.MOD_DEVICECONTROLLER,
        c.MOD_DYNAMICCONTROLLER,
        c.MOD_SYNCCONTROLLER,
        c.MOD_CLOUDHUB,
        "policycontroller",
    }
)
#: cloud objects edged needs
TO_EDGED = frozenset({c.RT_POD, c.RT_CONFIGMAP, c.RT_SECRET})
DEVICE_TYPES = frozenset({c.RT_DEVICE, c.RT_DEVICEMODEL})
#: answers of edge requests worth keeping for autonomy
STORED_ANSWERS = frozenset(
    {
        c.RT_CONFIGMAP,
        c.RT_SECRET,
        c.RT_NODE,
        c.RT_LEASE,
        c.RT_SERVICEACCOUNTTOKEN,
        c.RT_NODEPATCH,
        c.RT_PODPATCH,
    }
)
#: queries answered from the store first
LOCAL_FIRST = frozenset({c.RT_CONFIGMAP, c.RT_SECRET})
#: offline status patches kept and resent
QUEUEABLE = frozenset({c.RT_NODEPATCH, c.RT_PODPATCH})
#: the edge acks the cloud's answer to these (capture: not to patch/delete)
ACKED_REQUESTS = frozenset({c.OP_QUERY, c.OP_INSERT, c.OP_UPDATE})
WRITES = frozenset({c.OP_INSERT, c.OP_UPDATE, c.OP_PATCH, c.OP_DELETE})


def _uid(obj: Any) -> str:
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            return str(meta.get("uid") or "")
    return ""


def _token_expired(token: Any) -> bool:
    """Whether a stored TokenRequest answer is past its ``status.expirationTimestamp``."""
    if not isinstance(token, dict):
        return True
    stamp = (token.get("status") or {}).get("expirationTimestamp")
    if not isinstance(stamp, str):
        return True
    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return True
    return when <= dt.datetime.now(dt.UTC)


class MetaManager:
    """The edge's metadata manager and its SQLite store."""

    def __init__(self, settings: MetaSettings) -> None:
        self.settings = settings
        self.store: MetaStore | None = None
        self._ctx: Context | None = None
        self.cloud_connected = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.max_concurrent_requests)
        #: edge requests running or waiting for a slot
        self._requests = 0
        self._flush_lock = asyncio.Lock()
        self._forwarders: dict[str, Forwarder] = {}

    @property
    def name(self) -> str:
        return c.MOD_METAMANAGER

    @property
    def group(self) -> str:
        return c.GROUP_META

    def enabled(self, config: Any) -> bool:
        mm = getattr(getattr(config, "modules", None), "meta_manager", None)
        return bool(getattr(mm, "enable", True))

    async def start(self, ctx: Context) -> None:
        self._ctx = ctx
        if self.store is None:
            self.store = await MetaStore.open(self.settings.data_source)
        log.info("metamanager: store at %s", self.settings.data_source)
        try:
            while True:
                msg = await ctx.receive(self.name)
                await self._handle(ctx, msg)
        finally:
            await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._forwarders.clear()

    async def cleanup(self) -> None:
        # requests in flight first, so none touches a closed store
        await self._stop_tasks()
        store, self.store = self.store, None
        if store is not None:
            await store.close()

    # -- dispatch ------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, ctx: Context, msg: Message) -> None:
        if msg.resource == c.RESOURCE_NODE_CONNECTION and msg.operation == c.OP_CONNECT:
            self.cloud_connected = msg.content == c.CLOUD_CONNECTED
            log.info(
                "metamanager: cloud %s", "connected" if self.cloud_connected else "disconnected"
            )
            if self.cloud_connected:
                self._spawn(self._flush_pending(ctx))
            return
        if msg.source in CLOUD_SOURCES and not msg.parent_id:
            try:
                await self._from_cloud(ctx, msg)
            except StoreError:
                # not acked: the cloud resends it (protocol.md 4.2)
                log.exception("metamanager: could not store %s", msg.describe())
            return
        if msg.operation in (c.OP_RESPONSE, c.OP_ERROR):
            log.info("metamanager: unexpected response %s dropped", msg.describe())
            return
        limit = self.settings.max_concurrent_requests + self.settings.max_queued_requests
        if self._requests >= limit:
            self._fail(
                ctx,
                msg,
                429,
                "TooManyRequests",
                f"metamanager has {self._requests} requests in progress; try again later",
            )
            return
        # the slot is taken inside the task: waiting for it here would stall cloud
        # pushes (which must be stored and acked) behind requests to a silent cloud
        self._requests += 1
        self._spawn(self._edge_request(ctx, msg))

    # -- from the cloud ----------------------------------------------------------------

    async def _from_cloud(self, ctx: Context, msg: Message) -> None:
        store = self._store()
        try:
            path = parse_edge_resource(msg.resource)
        except ResourceError as exc:
            log.warning("metamanager: %s dropped: %s", msg.describe(), exc)
            return
        op = msg.operation
        forward = True
        if op in (c.OP_INSERT, c.OP_UPDATE, c.OP_PATCH):
            await store.put(msg.resource, path.type, msg.content)
        elif op == c.OP_DELETE:
            forward = await self._delete_from_cloud(store, msg, path)
        else:
            log.warning(
                "metamanager: operation %r from the cloud not handled: %s", op, msg.describe()
            )
            return
        is_device = msg.source == c.MOD_DEVICECONTROLLER and path.type in DEVICE_TYPES
        if is_device and op != c.OP_UPDATE:
            # KubeEdge re-routes insert/delete to twin before acking (capture: meta/twin acks)
            msg = msg.copy()
            msg.route.source, msg.route.group = c.SOURCE_META, c.GROUP_TWIN
        await self._to_cloud(ctx, msg.response(c.CONTENT_OK))
        if not forward:
            return
        if path.type in TO_EDGED and c.MOD_EDGED in ctx.modules():
            self._forwarder(ctx, c.MOD_EDGED).put(msg)
        elif is_device and c.MOD_TWIN in ctx.modules():
            twin = msg.copy()
            twin.route.source, twin.route.group = c.SOURCE_META, c.GROUP_TWIN
            self._forwarder(ctx, c.MOD_TWIN).put(twin)

    def _forwarder(self, ctx: Context, module: str) -> Forwarder:
        fwd = self._forwarders.get(module)
        if fwd is None:
            fwd = self._forwarders[module] = Forwarder(ctx, module)
            self._spawn(fwd.run())
        return fwd

    async def _delete_from_cloud(self, store: MetaStore, msg: Message, path: ResourcePath) -> bool:
        if path.type == c.RT_POD:
            stored = await store.get(msg.resource)
            old, new = _uid(stored), _uid(msg.content)
            if old and new and old != new:
                # The pod was deleted and created again under the same name, and the
                # new one arrived first (e.g. both queued while the edge was offline).
                # The store keeps the new pod; edged still gets the delete, which
                # names the old uid, so that the old pod's containers are stopped.
                log.info(
                    "metamanager: delete of %s for uid %s: stored pod has uid %s, kept; "
                    "the old pod is removed from edged",
                    msg.resource,
                    new,
                    old,
                )
                return True
            await store.delete([msg.resource, f"{path.namespace}/{c.RT_PODPATCH}/{path.name}"])
            return True
        await store.delete([msg.resource])
        return True

    async def _to_cloud(self, ctx: Context, msg: Message) -> None:
        hub = self.settings.hub_module
        if hub not in ctx.modules():
            log.warning("metamanager: no hub module; %s not sent", msg.describe())
            return
        await ctx.send(hub, msg)

    # -- from the edge -----------------------------------------------------------------

    def _store(self) -> MetaStore:
        if self.store is None:
            raise ContextClosed("metamanager is not running")
        return self.store

    async def _edge_request(self, ctx: Context, msg: Message) -> None:
        try:
            async with self._slots:
                await self._run_request(ctx, msg)
        finally:
            self._requests -= 1

    async def _run_request(self, ctx: Context, msg: Message) -> None:
        try:
            await self._serve(ctx, msg)
        except StoreError as exc:
            log.exception("metamanager: store failure for %s", msg.describe())
            self._fail(ctx, msg, 500, "InternalError", str(exc))
        except ContextClosed:
            pass
        except Exception as exc:
            # A spawned task: an exception here would only surface when the task
            # is collected, and the caller would wait for its whole timeout.
            log.exception("metamanager: %s failed", msg.describe())
            self._fail(ctx, msg, 500, "InternalError", f"{type(exc).__name__}: {exc}")

    async def _serve(self, ctx: Context, msg: Message) -> None:
        store = self._store()
        try:
            path = parse_edge_resource(msg.resource)
        except ResourceError as exc:
            self._fail(ctx, msg, 400, "BadRequest", str(exc))
            return
        op, kind = msg.operation, path.type
        if op == c.OP_QUERY:
            if kind in (c.RT_PODLIST, c.RT_POD) and not path.name:
                pods = [v for _, v in await store.list_type(c.RT_POD) if isinstance(v, dict)]
                ns = path.namespace
                if ns != c.NULL_NAMESPACE:
                    pods = [p for p in pods if (p.get("metadata") or {}).get("namespace") == ns]
                self._reply(ctx, msg, pods)
                return
            if kind == c.RT_POD or kind in LOCAL_FIRST:
                cached = await store.get(msg.resource)
                if cached is not None:
                    self._reply(ctx, msg, cached)
                    return
                if kind == c.RT_POD:
                    self._fail(ctx, msg, 404, "NotFound", f"{msg.resource} not found")
                    return
            # Always ask: while the cloud is away the hub refuses at once and
            # the store answers, so a stale connection flag costs nothing.
            await self._remote(ctx, msg, path)
            return
        if op in WRITES or kind == c.RT_EVENT:
            if kind == c.RT_EVENT:
                # the cloud never answers events (protocol.md 6.4)
                await self._to_cloud(ctx, self._fresh(msg))
                self._reply(ctx, msg, c.CONTENT_OK)
                return
            if kind in QUEUEABLE:
                # this patch is newer than any kept one
                await store.remove_pending(msg.resource, None)
            await self._remote(ctx, msg, path)
            return
        self._fail(ctx, msg, 400, "BadRequest", f"operation {op!r} is not supported")

    async def _unanswered(
        self, ctx: Context, msg: Message, path: ResourcePath, failure: str
    ) -> None:
        if msg.operation == c.OP_QUERY:
            cached = await self._store().get(msg.resource)
            if path.type == c.RT_SERVICEACCOUNTTOKEN and _token_expired(cached):
                cached = None
            if cached is not None:
                log.info("metamanager: %s answered from the store (%s)", msg.describe(), failure)
                self._reply(ctx, msg, cached)
                return
            self._fail(
                ctx,
                msg,
                503,
                "ServiceUnavailable",
                f"{failure}; {msg.resource} is not in the local store",
            )
            return
        await self._offline_write(ctx, msg, path.type, failure)

    async def _offline_write(self, ctx: Context, msg: Message, kind: str, failure: str) -> None:
        if kind in QUEUEABLE and msg.operation == c.OP_PATCH:
            await self._store().put_pending(
                PendingPatch(msg.resource, msg.operation, msg.source, msg.group, msg.content)
            )
            self._fail(
                ctx,
                msg,
                503,
                shapes.REASON_QUEUED,
                f"{failure}; the patch of {msg.resource} is kept and sent when the cloud returns",
            )
            return
        timed_out = failure.startswith("no answer")
        self._fail(
            ctx,
            msg,
            504 if timed_out else 503,
            "Timeout" if timed_out else "ServiceUnavailable",
            f"{failure}; {msg.operation} {msg.resource} not possible",
        )

    @staticmethod
    def _fresh(msg: Message) -> Message:
        """The upstream copy of an edge request: a NEW msg id (processRemote's UpdateID)."""
        fwd = msg.copy()
        fwd.header.msg_id = new_msg_id()
        fwd.header.parent_msg_id = ""
        fwd.header.sync = False
        return fwd

    async def _ask_cloud(self, ctx: Context, fwd: Message) -> Message | None:
        try:
            return await ctx.send_sync(
                self.settings.hub_module, fwd, self.settings.remote_query_timeout
            )
        except SyncTimeout:
            log.warning(
                "metamanager: no answer from the cloud to %s within %.0fs",
                fwd.describe(),
                self.settings.remote_query_timeout,
            )
            return None

    async def _remote(self, ctx: Context, msg: Message, path: ResourcePath) -> None:
        """Ask the cloud; when it cannot answer, fall back to the store or refuse."""
        fwd = self._fresh(msg)
        try:
            resp = await self._ask_cloud(ctx, fwd)
            failure = (
                f"no answer from the cloud within {self.settings.remote_query_timeout:g}s"
                if resp is None
                else ""
            )
        except ContextError as exc:
            resp, failure = None, f"cannot reach the hub: {exc}"
        if resp is not None and resp.operation == c.OP_ERROR:
            failure = str(resp.content)
            resp = None
        if resp is None:
            await self._unanswered(ctx, msg, path, failure)
            return
        if msg.operation in ACKED_REQUESTS and resp.resource:
            await self._to_cloud(ctx, resp.response(c.CONTENT_OK))
        answer = shapes.split_answer(resp.content)
        if (
            answer.ok
            and path.type in STORED_ANSWERS
            and msg.operation != c.OP_DELETE
            and isinstance(answer.obj, dict)
        ):
            kept = await self._store().put_answer(msg.resource, path.type, answer.obj)
            if kept is not answer.obj and path.type in LOCAL_FIRST:
                # A newer version came down while the answer was on its way:
                # the requester gets the newer one, as a local answer would be.
                log.info(
                    "metamanager: %s answered from the store (it holds a newer version)",
                    msg.describe(),
                )
                self._reply(ctx, msg, kept)
                return
        self._reply(ctx, msg, resp.content)

    async def _flush_pending(self, ctx: Context) -> None:
        """Send the status patches kept while offline; the latest per object."""
        async with self._flush_lock:
            store = self._store()
            for patch in await store.list_pending():
                if not self.cloud_connected:
                    return
                fwd = Message.new(
                    source=patch.source,
                    group=patch.group,
                    operation=patch.operation,
                    resource=patch.resource,
                    content=patch.content,
                )
                try:
                    resp = await self._ask_cloud(ctx, fwd)
                except ContextError:
                    return
                if resp is None or resp.operation == c.OP_ERROR:
                    log.warning("metamanager: resending kept patch %s failed", patch.resource)
                    return
                await store.remove_pending(patch.resource, patch.content)
                answer = shapes.split_answer(resp.content)
                log.info(
                    "metamanager: kept patch of %s sent (%s)",
                    patch.resource,
                    "ok" if answer.ok else answer.error,
                )

    # -- answers -------------------------------------------------------------------------

    @staticmethod
    def _reply(ctx: Context, msg: Message, content: Any) -> None:
        if msg.header.sync:
            ctx.send_resp(msg.response(content))

    @staticmethod
    def _fail(ctx: Context, msg: Message, code: int, reason: str, text: str) -> None:
        log.info("metamanager: %s -> %d %s: %s", msg.describe(), code, reason, text)
        if msg.header.sync:
            ctx.send_resp(msg.response(shapes.status(code, reason, text), operation=c.OP_ERROR))
