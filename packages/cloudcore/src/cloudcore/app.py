"""The cloudcore process: config, API client, modules, metrics, signals.

Mirrors ``cloud/cmd/cloudcore/app/server.go`` (Run): connect to the API server
from ``kubeAPIConfig.kubeConfig`` (or the pod's service account when it is
empty; ``kubeAPIConfig.master`` overrides the server URL), register the cloud
modules, and run them under the beehive runtime until SIGTERM/SIGINT.

Modules, in start order: ``cloudhub`` (certificates, HTTPS/WebSocket/QUIC),
``edgecontroller``, ``devicecontroller``, ``synccontroller``; each is skipped
when its ``enable`` is false. Any module that dies stops the process with exit
code 1 (no restart: a half-working cloudcore is worse than a restarted pod).

Prometheus metrics are served on ``commonConfig.monitorServer.bindAddress``
(``GET /metrics``); an empty address turns the endpoint off.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from beehive.module import Registry
from beehive.runtime import Runtime
from cloudcore.cloudhub.module import CloudHub

__all__ = ["MetricsServer", "build_registry", "connect_kube", "run", "split_host_port"]

log = logging.getLogger(__name__)


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port).

    Raises:
        ValueError: not host:port with a numeric port.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bindAddress {address!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


class MetricsServer:
    """``GET /metrics`` in the Prometheus text format, from the default registry."""

    def __init__(self, address: str) -> None:
        self.host, self.port = split_host_port(address)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def connect_kube(cfg: Any) -> Any:
    """A ``kubeclient.KubeClient`` from ``kubeAPIConfig``."""
    import kubeclient

    api = cfg.kube_api_config
    if api.kube_config:
        kube = await kubeclient.KubeClient.from_kubeconfig(api.kube_config)
    else:
        kube = await kubeclient.KubeClient.in_cluster()
    if api.master:
        kube.config.server = api.master.rstrip("/")
    return kube


def build_registry(cfg: Any, kube: Any) -> Registry:
    """The cloud modules in start order (cloudhub first: the others send to it)."""
    from cloudcore.cloudhub.handler import ConnectionHandler
    from cloudcore.cloudhub.module import HubDeps, session_handler
    from cloudcore.cloudhub.nodeindex import CacheFirstNodeObjectIndex, KubeNodeObjectIndex
    from cloudcore.devicecontroller import DeviceController
    from cloudcore.edgecontroller import EdgeController, EdgeControllerSettings
    from cloudcore.edgecontroller.objectindex import NotSynced
    from cloudcore.synccontroller.module import SyncController
    from cloudcore.syncrecords import SyncRecordInformers

    edge = EdgeController(kube, settings=EdgeControllerSettings.from_config(cfg))

    # One watch per record kind for the process: cloudhub reads the records it
    # checks before queueing from it, the synccontroller its rounds.
    records = SyncRecordInformers(kube) if kube is not None else None

    def handler(deps: HubDeps) -> ConnectionHandler:
        # Node authorization answers from the edgecontroller's caches, and
        # from the API server only until they are synced.
        index = None
        if deps.kube is not None:
            index = CacheFirstNodeObjectIndex(
                edge.object_index(), KubeNodeObjectIndex(deps.kube), not_ready=NotSynced
            )
        return session_handler(deps, node_index=index, records=records)

    registry = Registry()
    registry.register(CloudHub(cfg, kube=kube, handler_factory=handler))
    registry.register(edge)
    registry.register(DeviceController(kube))
    registry.register(SyncController(kube, records=records, informers=edge.informer_for))
    return registry


async def run(cfg: Any, *, registry: Registry | None = None, kube: Any = None) -> int:
    """Run cloudcore until SIGTERM/SIGINT; returns the exit code.

    ``registry``/``kube`` may be given by tests; by default they are built
    from ``cfg``.
    """
    own_kube = kube is None
    if own_kube:
        kube = await connect_kube(cfg)
    metrics: MetricsServer | None = None
    try:
        bind = cfg.common_config.monitor_server.bind_address
        if bind:
            metrics = MetricsServer(bind)
            await metrics.start()
        runtime = Runtime(registry or build_registry(cfg, kube), cfg)
        code = await runtime.run(handle_signals=True)
        log.info("cloudcore stopped (exit code %d)", code)
        return code
    finally:
        if metrics is not None:
            await metrics.stop()
        if own_kube:
            await kube.close()
