"""The edge hub: beehive module ``websocket`` (group ``hub``).

Mirrors ``edge/pkg/edgehub/edgehub.go`` and ``process.go``. The module body:

1. gets a client certificate (:mod:`edgecore.edgehub.bootstrap`), retrying
   while the cloud is unreachable and failing the module on a permanent error
   (bad token, CA hash mismatch, refusal, expired certificate);
2. connects (WebSocket or QUIC), sends a keepalive at once and every
   ``heartbeat`` seconds, tells the groups meta/twin/edged/bus that the cloud
   is connected, routes downstream messages (protocol.md 1.3) and answers
   viaduct control messages;
3. on any link failure, a malformed frame included, closes the link, tells the
   groups the cloud is gone and reconnects after a jittered exponential
   back-off; when the certificate reaches its rotation deadline it renews it
   and reconnects with the new one.

Upstream, one task for the whole module life reads the ``websocket`` queue and
writes through the token bucket. While disconnected, a synchronous request is
answered at once with an ``error`` response, so callers do not wait for their
timeout; other messages (acks) are dropped and logged: the cloud resends
ack-required messages by itself (protocol.md 4.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import ssl
from typing import Any

from websockets.exceptions import WebSocketException

from beehive import constants as c
from beehive.context import Context
from beehive.exceptions import ContextClosed, QueueFull
from beehive.message import Message
from edgecore.edgehub import bootstrap, routing
from edgecore.edgehub.backoff import Backoff
from edgecore.edgehub.errors import BootstrapError, LinkError, MalformedFrame
from edgecore.edgehub.ratelimit import TokenBucket
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
        self._ctx: Context | None = None
        self._link: CloudLink | None = None
        self._cert: bootstrap.CertInfo | None = None
        self._rotation_at: dt.datetime | None = None
        self._limiter = TokenBucket(settings.message_qps, settings.message_burst)
        #: counters for operators and tests: sessions, reconnects, rotations, malformed
        self.stats: dict[str, int] = {
            "sessions": 0,
            "rotations": 0,
            "malformed": 0,
            "dropped": 0,
            "sent": 0,
        }
        self.connected = asyncio.Event()

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
        upstream = asyncio.create_task(self._upstream_loop(), name="edgehub:upstream")
        try:
            await self._connection_loop()
        finally:
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, ContextClosed):
                await upstream

    async def cleanup(self) -> None:
        link, self._link = self._link, None
        self.connected.clear()
        if link is not None:
            await link.close()

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
        cert = self._cert
        if cert is None or cert.not_after > dt.datetime.now(dt.UTC):
            return
        try:
            self._set_cert(await bootstrap.ensure_certificates(self.settings))
        except BootstrapError as exc:
            log.error("node %s: %s", self._node, exc)

    def _set_cert(self, info: bootstrap.CertInfo) -> None:
        self._cert = info
        self._rotation_at = bootstrap.rotation_deadline(info, self._rng)
        if self.settings.rotate_certificates:
            log.info(
                "node %s: certificate rotation due at %s", self._node, self._rotation_at.isoformat()
            )

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
        backoff = Backoff(
            self.settings.reconnect_initial_backoff, self.settings.reconnect_max_backoff, self._rng
        )
        while True:
            try:
                link = await self._open_link()
            except (OSError, TimeoutError, WebSocketException, ssl.SSLError, LinkError) as exc:
                await self._renew_if_expired()
                delay = backoff.next()
                log.warning(
                    "node %s: cannot connect to the cloud at %s (%s): %s; retrying in %.1fs",
                    self._node,
                    self._server(),
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self.stats["sessions"] += 1
            log.info(
                "node %s: connected to the cloud at %s over %s",
                self._node,
                self._server(),
                link.transport,
            )
            rotated = False
            try:
                rotated = await self._session(link)
            finally:
                self._link = None
                self.connected.clear()
                await link.close()
                with contextlib.suppress(ContextClosed):
                    await self._notify(connected=False)
            if rotated:
                continue
            delay = backoff.next()
            log.info("node %s: reconnecting in %.1fs", self._node, delay)
            await asyncio.sleep(delay)

    async def _session(self, link: CloudLink) -> bool:
        """Run one connection; True when it ended for a certificate rotation."""
        try:
            await link.send(routing.keepalive())
        except LinkError as exc:
            log.warning("node %s: first keepalive failed: %s", self._node, exc)
            return False
        self._link = link
        self.connected.set()
        await self._notify(connected=True)
        tasks = [
            asyncio.create_task(self._keepalive_loop(link), name="edgehub:keepalive"),
            asyncio.create_task(self._downstream_loop(link), name="edgehub:downstream"),
        ]
        rotation: asyncio.Task[None] | None = None
        if self.settings.rotate_certificates and self._rotation_at is not None:
            rotation = asyncio.create_task(self._rotation(), name="edgehub:rotation")
            tasks.append(rotation)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            failure = t.exception()
            if isinstance(failure, MalformedFrame):
                self.stats["malformed"] += 1
                log.error("node %s: %s; dropping the connection", self._node, failure)
            elif isinstance(failure, LinkError):
                log.warning("node %s: connection lost: %s", self._node, failure)
            elif isinstance(failure, ContextClosed):
                raise failure
            elif failure is not None:
                # a bug in handling one message must not take the edge down:
                # report it loudly and start a fresh session
                log.error(
                    "node %s: session failed unexpectedly; reconnecting",
                    self._node,
                    exc_info=failure,
                )
        return rotation is not None and rotation in done and rotation.exception() is None

    async def _keepalive_loop(self, link: CloudLink) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            await link.send(routing.keepalive())

    async def _downstream_loop(self, link: CloudLink) -> None:
        ctx = self._require_ctx()
        while True:
            msg = await link.recv()
            await self._dispatch(ctx, link, msg)

    async def _dispatch(self, ctx: Context, link: CloudLink, msg: Message) -> None:
        decision = routing.route_downstream(msg)
        action = decision.action
        if action is routing.Action.CONTROL:
            await link.send(routing.control_reply(msg))
        elif action is routing.Action.RESPOND:
            if not ctx.send_resp(msg):
                log.info(
                    "node %s: response %s matches no pending request; dropped",
                    self._node,
                    msg.describe(),
                )
        elif action is routing.Action.GROUP:
            if ctx.group_members(decision.target):
                await ctx.send_to_group(decision.target, msg)
            else:
                self._drop(msg, f"no module in group {decision.target}")
        elif action is routing.Action.MODULE:
            if decision.target in ctx.modules():
                await ctx.send(decision.target, msg)
            else:
                self._drop(msg, f"no module {decision.target}")
        else:
            self._drop(msg, decision.reason)

    def _drop(self, msg: Message, reason: str) -> None:
        self.stats["dropped"] += 1
        log.warning("node %s: dropped %s: %s", self._node, msg.describe(), reason)

    async def _rotation(self) -> None:
        if self._rotation_at is None:
            return
        await bootstrap.sleep_until(self._rotation_at)
        backoff = Backoff(1.0, self.settings.rotation_retry_max, self._rng)
        while True:
            try:
                info = await bootstrap.rotate(self.settings)
            except BootstrapError as exc:
                delay = backoff.next()
                log.warning(
                    "node %s: certificate rotation failed: %s; retrying in %.1fs",
                    self._node,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self.stats["rotations"] += 1
            self._set_cert(info)
            log.info("node %s: reconnecting with the rotated certificate", self._node)
            return

    async def _notify(self, *, connected: bool) -> None:
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
        loop = asyncio.get_running_loop()
        while True:
            msg = await ctx.receive(self.name)
            if self._link is None:
                self._refuse(ctx, msg, "the cloud is disconnected")
                continue
            await self._rate_limit(loop)
            link = self._link
            if link is None:
                self._refuse(ctx, msg, "the cloud is disconnected")
                continue
            try:
                await link.send(routing.to_wire(msg))
                self.stats["sent"] += 1
            except LinkError as exc:
                self._refuse(ctx, msg, str(exc))
                # the downstream reader sees the close and ends the session
                asyncio.create_task(link.close())  # noqa: RUF006

    async def _rate_limit(self, loop: asyncio.AbstractEventLoop) -> None:
        wait = self._limiter.take(loop.time())
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self._limiter.take(loop.time())

    def _refuse(self, ctx: Context, msg: Message, reason: str) -> None:
        if msg.header.sync:
            ctx.send_resp(msg.response(reason, operation=c.OP_ERROR))
            log.warning("node %s: request %s not sent: %s", self._node, msg.describe(), reason)
        else:
            self.stats["dropped"] += 1
            log.warning("node %s: %s not sent: %s", self._node, msg.describe(), reason)
