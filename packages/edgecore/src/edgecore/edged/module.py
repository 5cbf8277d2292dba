"""edged as a beehive module: name ``edged``, group ``edged``.

The data path (design.md 2): metamanager stores each pod/configmap/secret the
cloud sends, acks it, and forwards the message unchanged here
(``ctx.send("edged", msg)``, resource ``<ns>/pod/<name>``, content = the
object). edged applies it to :class:`~edgecore.edged.runtime.PodRuntime`;
everything edged asks or reports goes back through
:class:`edgecore.metaclient.MetaClient`. edgehub's ``node/connection``
messages (``cloud_connected``) make edged report node status and renew its
lease at once.

Start-up order: wait for the CRI socket (logged, retried), load the pods of the
local store (edge autonomy: containers are adopted, not recreated), then
register the node and start the status/lease loop next to the message loop.
``cleanup`` stops edged's tasks but leaves the containers running, so an
edgecore restart does not restart any pod.

Messages outside the ready window are handled deliberately, never by accident:

* during start-up they wait in edged's beehive queue (the receive loop starts
  only once the runtime answers and the store is loaded), so nothing is lost;
* once ``cleanup`` has begun (SIGTERM: beehive cleans a module up before it
  cancels its body) they are dropped with one info line. Nothing is lost
  either: metamanager stored (or removed) the object before it forwarded it,
  and the next start loads the pods from that store and garbage-collects the
  containers of pods no longer there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from beehive import constants as c
from beehive.context import Context
from beehive.message import Message
from edgecore.edged.cri import CRIClient
from edgecore.edged.errors import CRIError
from edgecore.edged.metasource import MetaSource
from edgecore.edged.node import NodeAgent
from edgecore.edged.runtime import PodRuntime
from edgecore.edged.settings import EdgedSettings, static_pod_manifests
from kecommon.resources import ResourceError, parse_edge_resource

__all__ = ["Edged", "build_module"]

log = logging.getLogger(__name__)

POD_OPS = frozenset({c.OP_INSERT, c.OP_UPDATE, c.OP_PATCH, c.OP_RESPONSE})
CONFIG_TYPES = frozenset({c.RT_CONFIGMAP, c.RT_SECRET})


class Edged:
    """The beehive module.

    Args:
        settings: edged's settings.
        meta: the metaclient to use; by default ``MetaClient(ctx)`` on the module's context.
        enable: ``modules.edged.enable``.
        runtime_wait_initial / runtime_wait_max: back-off while the CRI is not answering.
    """

    def __init__(
        self,
        settings: EdgedSettings,
        *,
        meta: MetaSource | None = None,
        enable: bool = True,
        runtime_wait_initial: float = 1.0,
        runtime_wait_max: float = 30.0,
    ) -> None:
        self.settings = settings
        self._meta = meta
        self._enable = enable
        self._wait_initial = runtime_wait_initial
        self._wait_max = runtime_wait_max
        self.cri: CRIClient | None = None
        self.runtime: PodRuntime | None = None
        self.node: NodeAgent | None = None
        self._node_task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def name(self) -> str:
        return c.MOD_EDGED

    @property
    def group(self) -> str:
        return c.GROUP_EDGED

    def enabled(self, config: Any) -> bool:
        return self._enable

    async def _wait_for_runtime(self, cri: CRIClient) -> None:
        delay = self._wait_initial
        while True:
            try:
                v = await cri.version()
            except CRIError as exc:
                log.warning(
                    "node %s: container runtime %s not answering (%s); retry in %.0fs",
                    self.settings.node_name,
                    self.settings.runtime_endpoint,
                    exc.code,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._wait_max)
                continue
            log.info(
                "node %s: container runtime %s %s at %s",
                self.settings.node_name,
                v.runtime_name,
                v.runtime_version,
                self.settings.runtime_endpoint,
            )
            return

    async def _check_sandbox_image(self, cri: CRIClient) -> None:
        image = self.settings.pod_sandbox_image
        try:
            present = await cri.image_status(image)
        except CRIError as exc:
            log.warning(
                "node %s: cannot check sandbox image %s: %s", self.settings.node_name, image, exc
            )
            return
        if present is None:
            # The runtime uses its own sandbox_image setting; a missing one is pulled on the
            # first pod, which fails without a registry. Say so once, early.
            log.warning(
                "node %s: sandbox image %s is not present in the runtime; pods will need a "
                "registry (import it with ctr -n k8s.io images import, see docs/edgecore.md)",
                self.settings.node_name,
                image,
            )

    async def _load(self, runtime: PodRuntime) -> None:
        delay = self._wait_initial
        while True:
            try:
                await runtime.start()
                return
            except Exception as exc:
                log.warning(
                    "node %s: cannot load pods from the local store (%s); retry in %.0fs",
                    self.settings.node_name,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._wait_max)

    def warn_static_pods(self) -> None:
        """Static pods are not supported: say so when ``staticPodPath`` holds manifests
        (an unused path is not worth a warning, so the key itself is not reported)."""
        manifests = static_pod_manifests(self.settings.static_pod_path)
        if manifests:
            log.warning(
                "node %s: static pods are not supported; %d manifests in %s are ignored: %s",
                self.settings.node_name,
                len(manifests),
                self.settings.static_pod_path,
                ", ".join(p.name for p in manifests),
            )

    async def start(self, ctx: Context) -> None:
        self._stopping = False  # a restart by the beehive registry's policy
        meta = self._meta
        if meta is None:
            from edgecore.metaclient import MetaClient

            meta = MetaClient(ctx, source=c.MOD_EDGED)
        self.warn_static_pods()
        self.cri = CRIClient(self.settings.runtime_endpoint, timeouts=self.settings.cri)
        await self._wait_for_runtime(self.cri)
        await self._check_sandbox_image(self.cri)
        self.runtime = PodRuntime(self.cri, meta, self.settings)
        self.node = NodeAgent(self.cri, meta, self.settings)
        await self._load(self.runtime)
        self._node_task = asyncio.create_task(self.node.run(), name="edged-node")
        while True:
            msg = await ctx.receive(self.name)
            try:
                self.handle(msg)
            except Exception:
                log.exception("node %s: cannot handle %s", self.settings.node_name, msg.describe())

    def handle(self, msg: Message) -> None:
        """Apply one message from metamanager or edgehub."""
        runtime, node = self.runtime, self.node
        if self._stopping or runtime is None or node is None:
            # See the module docstring: the store already has it; the next start applies it.
            log.info(
                "node %s: edged is %s; dropping %s (applied from the local store on next start)",
                self.settings.node_name,
                "stopping" if self._stopping else "not started",
                msg.describe(),
            )
            return
        if msg.resource == c.RESOURCE_NODE_CONNECTION:
            if msg.content == c.CLOUD_CONNECTED:
                log.info("node %s: cloud connected, reporting status", self.settings.node_name)
                task = asyncio.create_task(node.resync(), name="edged-node-resync")
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return
        try:
            path = parse_edge_resource(msg.resource)
        except ResourceError:
            log.warning(
                "node %s: ignoring %s: bad resource", self.settings.node_name, msg.describe()
            )
            return
        if path.type == c.RT_POD:
            content = msg.content
            if msg.operation == c.OP_DELETE:
                if not isinstance(content, dict):
                    # legacy form: the pod UID as a string
                    content = {
                        "metadata": {
                            "namespace": path.namespace,
                            "name": path.name,
                            "uid": content if isinstance(content, str) else "",
                        }
                    }
                runtime.remove_pod(content)
            elif msg.operation in POD_OPS and isinstance(content, dict):
                runtime.upsert_pod(content)
            else:
                log.warning("node %s: ignoring %s", self.settings.node_name, msg.describe())
        elif path.type in CONFIG_TYPES:
            if msg.operation in POD_OPS:
                runtime.config_changed(path.type, path.namespace, path.name)
        else:
            log.debug("node %s: not for edged: %s", self.settings.node_name, msg.describe())

    async def cleanup(self) -> None:
        self._stopping = True
        task, self._node_task = self._node_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runtime, self.runtime = self.runtime, None
        if runtime is not None:
            await runtime.close()
        cri, self.cri = self.cri, None
        if cri is not None:
            await cri.close()


def build_module(cfg: Any) -> Edged:
    """edged from an ``EdgeCoreConfig`` (used by ``edgecore.app``)."""
    return Edged(EdgedSettings.from_config(cfg), enable=bool(cfg.modules.edged.enable))
