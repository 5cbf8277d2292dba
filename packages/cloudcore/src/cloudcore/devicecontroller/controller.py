"""The devicecontroller beehive module (name and group ``devicecontroller``).

Mirrors ``cloud/pkg/devicecontroller``: one informer for Devices and one for
DeviceModels (process-wide), :class:`DeviceDownstream` for the cloud -> edge
messages and :class:`DeviceUpstream` for twin/state reports received with
``ctx.receive("devicecontroller")``, handled in order per node.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kubeclient
from beehive.constants import GROUP_DEVICECONTROLLER, MOD_DEVICECONTROLLER
from beehive.context import Context
from cloudcore.controlloop import receive_into_workers, supervise
from cloudcore.devicecontroller.downstream import DeviceDownstream
from cloudcore.devicecontroller.upstream import DeviceUpstream
from cloudcore.keyedworkers import KeyedWorkers

__all__ = ["DeviceController"]

log = logging.getLogger(__name__)


class DeviceController:
    name = MOD_DEVICECONTROLLER
    group = GROUP_DEVICECONTROLLER

    def __init__(self, client: kubeclient.KubeClient, *, concurrency: int = 64) -> None:
        self.client = client
        self.concurrency = concurrency
        self.devices: kubeclient.Informer | None = None
        self.models: kubeclient.Informer | None = None
        self.downstream: DeviceDownstream | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._workers: KeyedWorkers | None = None
        self._synced = asyncio.Event()

    def enabled(self, config: Any) -> bool:
        dc = getattr(getattr(config, "modules", None), "device_controller", None)
        return bool(getattr(dc, "enable", True))

    async def wait_synced(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    async def start(self, ctx: Context) -> None:
        ctx.add_module(self.name, self.group)
        down = DeviceDownstream(ctx, self.client, models=lambda: self.models)
        self.downstream = down
        up = DeviceUpstream(ctx, self.client, devices=lambda: self.devices)
        self.models = kubeclient.Informer(self.client, kubeclient.DEVICEMODELS)
        self.models.add_handlers(down.model_added, down.model_updated, down.model_deleted)
        self.devices = kubeclient.Informer(self.client, kubeclient.DEVICES)
        self.devices.add_handlers(down.device_added, down.device_updated, down.device_deleted)
        self._workers = KeyedWorkers(limit=self.concurrency, name="devicecontroller")
        self._tasks = [
            asyncio.create_task(self._start_informers(), name="devicecontroller-informers"),
            asyncio.create_task(self._receive_loop(ctx, up), name="devicecontroller-upstream"),
        ]
        log.info("devicecontroller started")
        try:
            # Runs until the context closes (the receiver returns) or a task dies.
            await supervise(self._tasks, main=self._tasks[-1])
        finally:
            await self.cleanup()

    async def _start_informers(self) -> None:
        assert self.models is not None and self.devices is not None
        # Models first, so a device's model is in the cache when it is sent.
        self.models.start()
        await self.models.wait_synced()
        self.devices.start()
        await self.devices.wait_synced()
        self._synced.set()
        log.info("devicecontroller informers synced: %d devices, %d models",
                 len(self.devices), len(self.models))

    async def _receive_loop(self, ctx: Context, up: DeviceUpstream) -> None:
        assert self._workers is not None
        await receive_into_workers(ctx, self.name, self._workers, handle=up.handle,
                                   key=up.node_key)

    async def cleanup(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._workers is not None:
            await self._workers.close()
        for inf in (self.devices, self.models):
            if inf is not None:
                await inf.stop()
