"""A cloudcore assembled for the delivery tests: real API server, real modules.

:class:`CloudSide` runs, on one beehive Context, the real SessionManager
(with the ObjectSync recorder), the real SyncController, both reading the
records from one shared pair of informers as in the cloudcore process, and
:class:`ConfigMapFeeder`, a stand-in for the edgecontroller written for these
tests: it watches the configmaps of one namespace with a kubeclient Informer
and sends each add/update/delete for the node to cloudhub, the way the
edgecontroller does (source ``edgecontroller``, group ``resource``, the object
as content, its resourceVersion in the header). Stopping a CloudSide and
starting a new one over the same API server is a cloudcore restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kubeclient
from beehive.context import Context
from beehive.message import Message
from cloudcore.cloudhub.delivery import DeliverySettings
from cloudcore.cloudhub.sessions import SessionManager, SessionSettings
from cloudcore.synccontroller.module import SyncController
from cloudcore.syncrecords import SyncRecordInformers
from kecommon.resources import build_resource

# The feeder's own client ends a watch that delivered nothing, not even one of
# devkube's 1 s test bookmarks, for 3 s, and resumes from the last version (the
# Informer's inactivity recovery). Without it, one stalled watch stream (seen
# with devkube's watch handler under bursts, reported to the lead) would hang the
# test for the watch's full 300 s.
FEEDER_SETTINGS = kubeclient.ClientSettings(
    watch=kubeclient.WatchSettings(inactivity_timeout=3.0, reconnect_backoffs=(0.1, 0.5))
)


class ConfigMapFeeder:
    def __init__(self, client: kubeclient.KubeClient, ctx: Context, *, node: str, namespace: str):
        self.ctx = ctx
        self.node = node
        self.client = client
        self.informer = kubeclient.Informer(client, kubeclient.CONFIGMAPS, namespace=namespace)
        self.informer.add_handlers(
            on_add=lambda obj: self._send("insert", obj),
            on_update=lambda old, new: self._send("update", new),
            on_delete=lambda obj: self._send("delete", obj),
        )

    async def _send(self, operation: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        msg = Message.new(
            source="edgecontroller",
            group="resource",
            operation=operation,
            resource=build_resource(self.node, meta["namespace"], "configmap", meta["name"]),
            content=obj,
            resource_version=meta["resourceVersion"],
        )
        await self.ctx.send("cloudhub", msg)


class CloudSide:
    def __init__(
        self,
        client: kubeclient.KubeClient,
        feeder_client: kubeclient.KubeClient,
        *,
        node: str,
        namespace: str,
        sync_period: float = 0.2,
    ) -> None:
        self.ctx = Context()
        self.records = SyncRecordInformers(client)
        self.manager = SessionManager(
            SessionSettings(
                keepalive_interval=None,
                authorization=False,
                delivery=DeliverySettings(ack_timeout=1.0),
            ),
            kube=client,
            records=self.records,
        )
        self.sync = SyncController(client, period=sync_period, records=self.records)
        self.feeder = ConfigMapFeeder(feeder_client, self.ctx, node=node, namespace=namespace)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.ctx.add_module("synccontroller", "synccontroller")
        self._tasks.append(asyncio.create_task(self.manager.run(self.ctx)))
        await asyncio.wait_for(self.manager.wait_ready(), 5)
        self._tasks.append(asyncio.create_task(self.sync.start(self.ctx)))
        self.feeder.informer.start()
        await self.feeder.informer.wait_synced(timeout=10)

    async def stop(self) -> None:
        await self.feeder.informer.stop()
        await self.manager.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.ctx.close()
