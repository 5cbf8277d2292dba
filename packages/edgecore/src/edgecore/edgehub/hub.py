"""The edge hub: beehive module ``websocket`` (group ``hub``), the asyncio layer.

Mirrors ``edge/pkg/edgehub/edgehub.go`` and ``process.go``. Every decision
(when to connect, keepalive, back-off, rate limit, routing, control replies,
rotation deadline) is taken by the pure core
:class:`edgecore.edgehub.protocol.EdgeHubProtocol`; this module only moves
things between the core and the world:

* the connection loop opens the link (WebSocket or QUIC) when the core's state
  is ``CONNECTING`` and reports ``connection_made`` / ``connect_failed``; it
  first gets a client certificate (:mod:`edgecore.edgehub.bootstrap`),
  retrying while the cloud is unreachable and failing the module on a
  permanent error (bad token, CA hash mismatch, refusal, expired certificate);
* per session, a reader feeds ``message_received`` and waits until the events
  it caused are handled (so a full module queue slows the reading, as before),
  and a writer is the one write path: it writes ``messages_to_send()`` in
  order and reports ``write_failed``; any link failure, a malformed frame
  included, ends the session (``connection_lost``);
* one upstream task for the module's life reads the ``websocket`` queue, calls
  ``send_upstream`` and waits until the message is written or refused, so the
  token bucket's back-pressure reaches the beehive queue;
* one event task handles ``events_received()`` in order: connection notices to
  the groups meta/twin/edged/bus, downstream messages to modules, refusals
  (``error`` responses to waiting requests), rotation attempts, logs;
* one timer, armed at ``get_timer()`` with ``loop.call_at`` and re-armed after
  every call into the core, calls ``handle_timer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import random
import ssl
from collections.abc import Callable
from typing import Any

from websockets.exceptions import WebSocketException

from beehive import constants as c
from beehive.context import Context
from beehive.exceptions import ContextClosed, QueueFull
from beehive.message import Message
from edgecore.edgehub import bootstrap, events, protocol, routing
from edgecore.edgehub.backoff import Backoff
from edgecore.edgehub.errors import BootstrapError, LinkError, MalformedFrame
from edgecore.edgehub.settings import EdgeHubSettings
from edgecore.edgehub.transport import CloudLink

__all__ = ["EdgeHub"]

log = logging.getLogger(__name__)

#: how long a connect/disconnect notice may wait for room in a module's queue
NOTICE_TIMEOUT = 5.0


class EdgeHub:
    """The beehive module that links the edge to cloudhub."""

    def __init__(self, settings: EdgeHubSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not crypto)
        self._proto = protocol.EdgeHubProtocol(settings, rng=self._rng)
        self._ctx: Context | None = None
        self._link: CloudLink | None = None
        self._cert: bootstrap.CertInfo | None = None
        #: counters for operators and tests: sessions, rotations, malformed, ...
        self.stats: dict[str, int] = {
            "sessions": 0,
            "rotations": 0,
            "malformed": 0,
            "dropped": 0,
            "sent": 0,
        }
        self.connected = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        # "something changed": replaced by a fresh event on every change, so
        # that every waiter wakes and re-checks its own condition
        self._changed = asyncio.Event()
        self._acted = 0  # calls into the core so far
        self._handled = 0  # ... whose events the event task has handled
        self._writing = False
        self._session_end: asyncio.Future[str] | None = None
        self._rotation_task: asyncio.Task[None] | None = None

    # -- beehive module -------------------------------------------------------------

    @property
    def name(self) -> str:
        return c.MOD_EDGEHUB

    @property
    def group(self) -> str:
        return c.GROUP_HUB

    def enabled(self, config: Any) -> bool:
        hub = getattr(getattr(config, "modules", None), "edge_hub", None)
        return bool(getattr(hub, "enable", True))

    async def start(self, ctx: Context) -> None:
        self._ctx = ctx
        await self._obtain_certificate()
        tasks = [
            asyncio.create_task(self._event_loop(), name="edgehub:events"),
            asyncio.create_task(self._upstream_loop(), name="edgehub:upstream"),
            asyncio.create_task(self._connection_loop(), name="edgehub:connection"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._cancel_timer()
        for t in done:
            t.result()  # the loops never return: re-raise what ended one

    async def cleanup(self) -> None:
        link, self._link = self._link, None
        self.connected.clear()
        self._cancel_timer()
        if link is not None:
            await link.close()

    # -- the core's clock and timer ---------------------------------------------------

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _act(self) -> int:
        """After every call into the core: re-arm the timer and wake the tasks.

        Returns the sequence number that ``_settle`` waits for.
        """
        self._arm_timer()
        self._acted += 1
        self._notify()
        return self._acted

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _until(self, predicate: Callable[[], bool]) -> None:
        while True:
            changed = self._changed  # taken before the check: no lost wake-up
            if predicate():
                return
            await changed.wait()

    async def _settle(self, seq: int) -> None:
        """Wait until the events of core call ``seq`` have been handled."""
        await self._until(lambda: self._handled >= seq)

    def _arm_timer(self) -> None:
        when = self._proto.get_timer()
        if when == self._timer_at:
            return
        self._cancel_timer()
        self._timer_at = when
        if when is not None:
            self._timer = asyncio.get_running_loop().call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self) -> None:
        when = self._timer_at
        self._timer = None
        self._timer_at = None
        # call_at may fire a hair before ``when``; the core must see it as due
        now = self._now()
        self._proto.handle_timer(now if when is None else max(now, when))
        self._act()

    # -- certificates ---------------------------------------------------------------

    async def _obtain_certificate(self) -> None:
        backoff = Backoff(
            self.settings.reconnect_initial_backoff, self.settings.reconnect_max_backoff, self._rng
        )
        while True:
            try:
                self._set_cert(await bootstrap.ensure_certificates(self.settings))
                return
            except BootstrapError as exc:
                if not exc.retryable:
                    log.error("node %s: certificate bootstrap failed: %s", self._node, exc)
                    raise
                delay = backoff.next()
                log.warning("node %s: %s; retrying in %.1fs", self._node, exc, delay)
                await asyncio.sleep(delay)

    async def _renew_if_expired(self) -> None:
        """An expired certificate cannot connect or rotate: bootstrap again if a
        token is available, else say so clearly; either way keep running, so the
        edge stays autonomous while an operator provides a token."""
        if not self._proto.certificate_expired(self._now()):
            return
        try:
            self._set_cert(await bootstrap.ensure_certificates(self.settings))
        except BootstrapError as exc:
            log.error("node %s: %s", self._node, exc)

    def _set_cert(self, info: bootstrap.CertInfo) -> None:
        self._cert = info
        self._proto.certificate_installed(
            not_before=info.not_before,
            not_after=info.not_after,
            now=self._now(),
            wall_now=dt.datetime.now(dt.UTC),
        )
        self._act()

    async def _rotate_once(self) -> None:
        try:
            info = await bootstrap.rotate(self.settings)
        except BootstrapError as exc:
            self._proto.rotation_failed(str(exc), now=self._now())
        else:
            self._cert = info
            self._proto.rotation_succeeded(
                not_before=info.not_before,
                not_after=info.not_after,
                now=self._now(),
                wall_now=dt.datetime.now(dt.UTC),
            )
        self._act()

    # -- connection ---------------------------------------------------------------------

    @property
    def _node(self) -> str:
        return self.settings.node_name

    async def _open_link(self) -> CloudLink:
        if self.settings.use_quic:
            from edgecore.edgehub.transport.quic import connect_quic

            return await connect_quic(self.settings)
        from edgecore.edgehub.transport.ws import connect_websocket

        return await connect_websocket(self.settings)

    def _server(self) -> str:
        s = self.settings
        return s.quic_server if s.use_quic else s.ws_server

    async def _connection_loop(self) -> None:
        proto = self._proto
        while True:
            await self._until(lambda: proto.state is protocol.CONNECTING)
            try:
                link = await self._open_link()
            except (OSError, TimeoutError, WebSocketException, ssl.SSLError, LinkError) as exc:
                await self._renew_if_expired()
                proto.connect_failed(f"({type(exc).__name__}) {exc}", now=self._now())
                self._act()
                continue
            self.stats["sessions"] += 1
            log.info(
                "node %s: connected to the cloud at %s over %s",
                self._node,
                self._server(),
                link.transport,
            )
            await self._session(link)

    async def _session(self, link: CloudLink) -> None:
        """Run one connection until it fails or the core asks to close it."""
        end: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._session_end = end
        self._link = link
        self._proto.connection_made(self._now())
        self._act()
        self.connected.set()
        reader = asyncio.create_task(self._reader(link), name="edgehub:downstream")
        writer = asyncio.create_task(self._writer(link), name="edgehub:writer")
        reason = "the edge hub stopped"
        try:
            waiting: list[asyncio.Future[Any]] = [reader, writer, end]
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            reason = self._outcome(done)
        finally:
            self._session_end = None
            tasks = [reader, writer]
            if self._rotation_task is not None:
                tasks.append(self._rotation_task)
                self._rotation_task = None
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not end.done():
                end.cancel()
            self._link = None
            self.connected.clear()
            self._proto.connection_lost(reason, now=self._now())
            self._act()
            await link.close()

    def _outcome(self, done: set[asyncio.Future[Any]]) -> str:
        """Why the session ended (logged); re-raises ContextClosed."""
        reasons: list[str] = []
        for t in done:
            failure = t.exception()
            if failure is None:
                reasons.append(str(t.result()))  # the core asked to close
            elif isinstance(failure, MalformedFrame):
                self.stats["malformed"] += 1
                log.error("node %s: %s; dropping the connection", self._node, failure)
                reasons.append(str(failure))
            elif isinstance(failure, LinkError):
                log.warning("node %s: connection lost: %s", self._node, failure)
                reasons.append(str(failure))
            elif isinstance(failure, ContextClosed):
                raise failure
            else:
                # a bug in handling one message must not take the edge down:
                # report it loudly and start a fresh session
                log.error(
                    "node %s: session failed unexpectedly; reconnecting",
                    self._node,
                    exc_info=failure,
                )
                reasons.append(f"session failed: {failure!r}")
        return "; ".join(reasons)

    async def _reader(self, link: CloudLink) -> None:
        while True:
            msg = await link.recv()
            self._proto.message_received(msg, now=self._now())
            await self._settle(self._act())

    async def _writer(self, link: CloudLink) -> None:
        """The one write path of a session: the core's messages, in order."""
        proto = self._proto
        while True:
            await self._until(lambda: proto.has_messages_to_send)
            remaining = proto.messages_to_send()
            self._writing = True
            reason = protocol.REASON_DISCONNECTED
            try:
                while remaining:
                    msg = remaining[0]
                    await link.send(msg)
                    del remaining[0]
                    if proto.upstream_origin(msg.msg_id) is not None:
                        self.stats["sent"] += 1
            except LinkError as exc:
                reason = str(exc)
                raise
            finally:
                if remaining:
                    proto.write_failed(remaining, reason=reason, now=self._now())
                self._writing = False
                self._act()

    # -- events -------------------------------------------------------------------------

    async def _event_loop(self) -> None:
        proto = self._proto
        while True:
            target = self._acted
            for event in proto.events_received():
                try:
                    await self._handle(event)
                except ContextClosed:
                    raise
                except Exception as exc:  # reported; costs the session
                    self._fail_session(exc)
            self._handled = target
            self._notify()
            await self._until(functools.partial(self._acted_since, target))

    def _acted_since(self, seq: int) -> bool:
        return self._acted > seq

    def _fail_session(self, exc: Exception) -> None:
        end = self._session_end
        if end is not None and not end.done():
            end.set_exception(exc)
        else:
            log.error("node %s: handling an event failed", self._node, exc_info=exc)

    async def _handle(self, event: events.Event) -> None:
        ctx = self._require_ctx()
        if isinstance(event, events.MessageRouted):
            await self._deliver(ctx, event)
        elif isinstance(event, events.ResponseReceived):
            if not ctx.send_resp(event.msg):
                log.info(
                    "node %s: response %s matches no pending request; dropped",
                    self._node,
                    event.msg.describe(),
                )
        elif isinstance(event, events.DownstreamDropped):
            self._drop(event.msg, event.reason)
        elif isinstance(event, events.UpstreamRefused):
            if event.reply is not None:
                ctx.send_resp(event.reply)
                log.warning(
                    "node %s: request %s not sent: %s",
                    self._node,
                    event.msg.describe(),
                    event.reason,
                )
            else:
                self.stats["dropped"] += 1
                log.warning(
                    "node %s: %s not sent: %s", self._node, event.msg.describe(), event.reason
                )
        elif isinstance(event, events.CloudConnected):
            # a session that is already gone is not announced (its disconnect
            # is): as before the split, when the first keepalive cannot be written
            if self._proto.connected and self._proto.sessions == event.session:
                await self._notify_modules(connected=True)
        elif isinstance(event, events.CloudDisconnected):
            with contextlib.suppress(ContextClosed):
                await self._notify_modules(connected=False)
            if event.retry_in > 0:
                log.info("node %s: reconnecting in %.1fs", self._node, event.retry_in)
        elif isinstance(event, events.ConnectionFailed):
            log.warning(
                "node %s: cannot connect to the cloud at %s %s; retrying in %.1fs",
                self._node,
                self._server(),
                event.reason,
                event.retry_in,
            )
        elif isinstance(event, events.CertificateInstalled):
            if self.settings.rotate_certificates:
                log.info(
                    "node %s: certificate rotation due at %s",
                    self._node,
                    event.rotation_at.isoformat(),
                )
        elif isinstance(event, events.RotationDeadlineReached):
            running = self._rotation_task
            if self._session_end is not None and (running is None or running.done()):
                self._rotation_task = asyncio.create_task(
                    self._rotate_once(), name="edgehub:rotation"
                )
        elif isinstance(event, events.RotationFailed):
            log.warning(
                "node %s: certificate rotation failed: %s; retrying in %.1fs",
                self._node,
                event.reason,
                event.retry_in,
            )
        elif isinstance(event, events.CertificateRotated):
            self.stats["rotations"] += 1
            log.info("node %s: reconnecting with the rotated certificate", self._node)
        elif isinstance(event, events.LinkCloseRequested):
            end = self._session_end
            if end is not None and not end.done():
                end.set_result(event.reason)
        # BackoffElapsed wakes the connection loop through the core's state;
        # ControlAnswered needs nothing: the reply is in messages_to_send

    async def _deliver(self, ctx: Context, event: events.MessageRouted) -> None:
        if event.to_group:
            if ctx.group_members(event.target):
                await ctx.send_to_group(event.target, event.msg)
            else:
                self._drop(event.msg, f"no module in group {event.target}")
        elif event.target in ctx.modules():
            await ctx.send(event.target, event.msg)
        else:
            self._drop(event.msg, f"no module {event.target}")

    def _drop(self, msg: Message, reason: str) -> None:
        self.stats["dropped"] += 1
        log.warning("node %s: dropped %s: %s", self._node, msg.describe(), reason)

    async def _notify_modules(self, *, connected: bool) -> None:
        ctx = self._require_ctx()
        for group in routing.CONNECTION_GROUPS:
            for module in ctx.group_members(group):
                try:
                    await ctx.send(
                        module, routing.connection_notice(group, connected), timeout=NOTICE_TIMEOUT
                    )
                except QueueFull:
                    log.error(
                        "node %s: module %s did not take the connection notice", self._node, module
                    )

    # -- upstream -----------------------------------------------------------------------

    def _require_ctx(self) -> Context:
        if self._ctx is None:
            raise RuntimeError("the edge hub is not started")
        return self._ctx

    async def _upstream_loop(self) -> None:
        ctx = self._require_ctx()
        proto = self._proto
        while True:
            msg = await ctx.receive(self.name)
            proto.send_upstream(msg, now=self._now())
            self._act()
            # one message at a time: wait until it is written or refused, so a
            # slow link or an empty token bucket holds the beehive queue back
            await self._until(
                lambda: not (proto.upstream_blocked or proto.has_messages_to_send or self._writing)
            )
