"""The ``cloudhub`` beehive module: certificates, the session layer and three servers.

Mirrors ``cloud/pkg/cloudhub/cloudhub.go`` (Start): prepare the CA, the
cloudcore certificate and the token (:mod:`~cloudcore.cloudhub.certstore`),
then serve HTTPS (10002), WebSocket (10000) and, if enabled, QUIC (10001).
Connections are handed to the session layer (``SessionManager``,
cloudhub-delivery), whose ``run(ctx)`` pump is started before any server
accepts a connection.

``start`` runs until cancelled; if the pump or the token refresher dies, it
raises and the runtime treats the module as crashed. ``cleanup`` stops the
servers, closes every session and is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from beehive.codec import DEFAULT_MAX_SIZE
from beehive.constants import GROUP_CLOUDHUB, MOD_CLOUDHUB
from cloudcore.cloudhub.certstore import CertStore, CertStoreSettings
from cloudcore.cloudhub.https import HttpsServer, NodeLookup
from cloudcore.cloudhub.tls import server_ssl_context
from cloudcore.cloudhub.transport.common import HubServerSettings
from cloudcore.cloudhub.transport.quic import QuicHubServer
from cloudcore.cloudhub.transport.ws import WebSocketServer

if TYPE_CHECKING:
    from beehive.context import Context
    from cloudcore.cloudhub.handler import ConnectionHandler
    from kubeclient import KubeClient

__all__ = ["CloudHub", "HubDeps", "node_auth_enabled", "session_handler"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HubDeps:
    """What a session-layer factory gets."""

    config: Any  # CloudCoreConfig
    kube: KubeClient | None
    store: CertStore


HandlerFactory = Callable[[HubDeps], "ConnectionHandler"]


def node_auth_enabled(hub: Any) -> bool:
    """Whether connections must prove their node (CN = ``system:node:<node_id>``).

    One switch for transports and message admission: the ``node`` mode of
    ``cloudHub.authorization`` (on by default), as the session layer reads it.
    """
    from cloudcore.cloudhub.sessions import node_authorization_enabled

    return bool(node_authorization_enabled(getattr(hub, "authorization", None)))


def _default_handler(deps: HubDeps) -> ConnectionHandler:
    return session_handler(deps)


def session_handler(
    deps: HubDeps, *, node_index: Any = None, records: Any = None
) -> ConnectionHandler:
    """The production session layer; ``node_index`` answers node authorization,
    ``records`` are the process's shared ObjectSync caches (SyncRecordInformers)."""
    from cloudcore.cloudhub.handler import SessionManager, SessionSettings

    return SessionManager(  # type: ignore[no-any-return]
        SessionSettings.from_cloudhub_config(deps.config.modules.cloud_hub),
        kube=deps.kube,
        cluster_ca=_cluster_ca(deps.kube),
        node_index=node_index,
        records=records,
    )


def _cluster_ca(kube: KubeClient | None) -> bytes | None:
    # The API server's CA, for edges asking for k8s/ca.crt; from the kubeconfig.
    config = getattr(kube, "config", None) or getattr(kube, "_config", None)
    for attr in ("ca_data", "certificate_authority_data"):
        value = getattr(config, attr, None)
        if isinstance(value, bytes | str) and value:
            return value.encode() if isinstance(value, str) else value
    return None


class CloudHub:
    """The beehive module ``cloudhub`` (group ``cloudhub``)."""

    def __init__(
        self,
        config: Any,
        *,
        kube: KubeClient | None = None,
        handler_factory: HandlerFactory | None = None,
        node_lookup: NodeLookup | None = None,
    ) -> None:
        self.config = config
        self.kube = kube
        self._factory = handler_factory or _default_handler
        self._node_lookup = node_lookup or (_kube_node_lookup(kube) if kube else None)
        self.store: CertStore | None = None
        self.handler: Any = None
        self.https: HttpsServer | None = None
        self.websocket: WebSocketServer | None = None
        self.quic: QuicHubServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    @property
    def name(self) -> str:
        return MOD_CLOUDHUB

    @property
    def group(self) -> str:
        return GROUP_CLOUDHUB

    def enabled(self, config: Any) -> bool:
        return bool(config.modules.cloud_hub.enable)

    async def start(self, ctx: Context) -> None:
        self._stopped = False
        hub = self.config.modules.cloud_hub
        self.store = await CertStore.load(CertStoreSettings.from_cloudhub(hub), self.kube)
        self.handler = self._factory(HubDeps(self.config, self.kube, self.store))
        run = getattr(self.handler, "run", None)
        if run is not None:
            self._tasks.append(asyncio.create_task(run(ctx), name="cloudhub:downstream"))
        self._tasks.append(
            asyncio.create_task(self.store.run_token_refresher(), name="cloudhub:token")
        )
        auth = node_auth_enabled(hub)
        max_frame = getattr(hub, "max_frame_size", None) or DEFAULT_MAX_SIZE
        write_timeout = float(getattr(hub, "write_timeout", 30) or 0) or None
        store = self.store
        if hub.https.enable:
            self.https = HttpsServer(
                store,
                address=hub.https.address,
                port=hub.https.port,
                ssl_context=server_ssl_context(
                    store.server, store.ca.cert, client_cert=ssl.CERT_OPTIONAL
                ),
                cert_days=int(hub.edge_cert_signing_duration),
                node_lookup=self._node_lookup,
            )
            await self.https.start()
        if hub.websocket.enable:
            self.websocket = WebSocketServer(
                HubServerSettings(
                    address=hub.websocket.address,
                    port=hub.websocket.port,
                    max_frame_size=max_frame,
                    node_auth=auth,
                    write_timeout=write_timeout,
                ),
                ssl_context=server_ssl_context(store.server, store.ca.cert),
                ca_cert=store.ca.cert,
                handler=self.handler,
            )
            await self.websocket.start()
        if hub.quic.enable:
            self.quic = QuicHubServer(
                HubServerSettings(
                    address=hub.quic.address,
                    port=hub.quic.port,
                    max_frame_size=max_frame,
                    node_auth=auth,
                    write_timeout=write_timeout,
                    max_incoming_streams=int(hub.quic.max_incoming_streams),
                ),
                server_cert=store.server,
                ca_cert=store.ca.cert,
                handler=self.handler,
            )
            await self.quic.start()
        # Run until cancelled; a dead helper task is a module crash.
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} failed") from task.exception()
        await asyncio.Event().wait()

    async def cleanup(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for server in (self.websocket, self.quic, self.https):
            if server is not None:
                try:
                    await server.stop()
                except Exception:
                    log.exception("stopping %s failed", type(server).__name__)
        self.websocket = self.quic = self.https = None
        close = getattr(self.handler, "close", None)
        if close is not None:
            try:
                await close()
            except Exception:
                log.exception("closing the session layer failed")
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _kube_node_lookup(kube: KubeClient) -> NodeLookup:
    async def lookup(name: str) -> bool:
        from kubeclient import NODES, NotFound

        try:
            await kube.get(NODES, name)
        except NotFound:
            return False
        return True

    return lookup
