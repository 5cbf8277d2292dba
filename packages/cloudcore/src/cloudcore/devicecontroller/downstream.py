"""Cloud -> edge for devices (``cloud/pkg/devicecontroller/controller/downstream.go``).

Device added with ``spec.nodeName`` (protocol.md 7.2, devices capture):

1. membership ``update`` on ``node/<node>/membership``, group ``twin``, content
   ``{"event_id", "timestamp", "added_devices": [{"id": "<ns>/<name>",
   "name": <name>}], "removed_devices": null}`` (a ``description`` label, if
   any, is carried as ``description``);
2. the DeviceModel, ``insert``, if no other device of that namespace on that
   node uses it yet;
3. the Device, ``insert``.

Device changed: ``update`` of the device; a ``nodeName`` (or model) change is
a delete on the old node plus an add on the new one. Device deleted: model
``delete`` if no longer used there, membership with ``removed_devices``,
device ``delete`` (the order KubeEdge uses). DeviceModel changed/deleted:
``update``/``delete`` to every node that has a device using it.

For every Device a DeviceStatus of the same name, owned by the Device, is
created (get-or-create); it is deleted with the Device (real clusters'
garbage collector would do it too; devkube has none).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import kubeclient
from beehive.constants import (
    GROUP_RESOURCE,
    GROUP_TWIN,
    MOD_DEVICECONTROLLER,
    OP_DELETE,
    OP_INSERT,
    OP_UPDATE,
    RT_DEVICE,
    RT_DEVICEMODEL,
    RT_MEMBERSHIP,
)
from beehive.context import Context
from beehive.exceptions import BeehiveError
from beehive.message import Message, now_ms
from cloudcore.devicecontroller.placement import ModelKey, Placement
from cloudcore.edgecontroller.messages import object_message
from kecommon.resources import build_device_resource

__all__ = ["DeviceDownstream", "membership_content"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _node(dev: Obj) -> str:
    return str((dev.get("spec") or {}).get("nodeName") or "")


def _model(dev: Obj) -> str:
    return str(((dev.get("spec") or {}).get("deviceModelRef") or {}).get("name") or "")


def membership_content(
    added: list[Obj] | None, removed: list[Obj] | None, *, timestamp: int | None = None
) -> dict[str, Any]:
    """``MembershipUpdate`` (``cloud/pkg/devicecontroller/types/device.go``)."""

    def entry(dev: Obj, with_description: bool) -> dict[str, Any]:
        meta = _meta(dev)
        item: dict[str, Any] = {"id": f"{meta.get('namespace')}/{meta.get('name')}",
                                "name": meta.get("name")}
        description = (meta.get("labels") or {}).get("description")
        if with_description and description:
            item["description"] = description
        return item

    return {
        "event_id": str(uuid.uuid4()),
        "timestamp": now_ms() if timestamp is None else timestamp,
        "added_devices": [entry(d, True) for d in added] if added else None,
        "removed_devices": [entry(d, False) for d in removed] if removed else None,
    }


class DeviceDownstream:
    def __init__(
        self,
        ctx: Context,
        client: kubeclient.KubeClient,
        *,
        models: Callable[[], kubeclient.Informer | None],
        target: str = "cloudhub",
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.placement = Placement()
        self._models = models
        self.target = target

    async def send(self, msg: Message) -> None:
        try:
            await self.ctx.send(self.target, msg)
        except BeehiveError as exc:
            log.error("cannot hand %s to %s: %s", msg.describe(), self.target, exc)

    def _obj_msg(self, node: str, obj: Obj, rtype: str, op: str,
                 ref: kubeclient.ResourceRef) -> Message:
        return object_message(node, obj, rtype, op, ref=ref, source=MOD_DEVICECONTROLLER,
                              group=GROUP_RESOURCE)

    async def _membership(self, node: str, added: list[Obj] | None,
                          removed: list[Obj] | None) -> None:
        await self.send(Message.new(
            source=MOD_DEVICECONTROLLER, group=GROUP_TWIN, operation=OP_UPDATE,
            resource=build_device_resource(node, RT_MEMBERSHIP),
            content=membership_content(added, removed),
        ))

    async def _model_obj(self, namespace: str, model: str) -> Obj | None:
        informer = self._models()
        obj = informer.get(model, namespace) if informer is not None else None
        if obj is not None:
            return obj
        try:
            return kubeclient.with_type(
                await self.client.get(kubeclient.DEVICEMODELS, model, namespace),
                kubeclient.DEVICEMODELS)
        except kubeclient.NotFound:
            return None

    # -- devices ------------------------------------------------------------------------

    async def device_added(self, dev: Obj) -> None:
        await self.ensure_status(dev)
        if _node(dev):
            await self._add_to_node(dev)

    async def _add_to_node(self, dev: Obj) -> None:
        meta = _meta(dev)
        ns, name, node, model = str(meta.get("namespace")), str(meta.get("name")), _node(dev), \
            _model(dev)
        first = self.placement.place(ns, name, node, model)
        log.info("device %s/%s -> node %s", ns, name, node)
        await self._membership(node, [dev], None)
        if first:
            model_obj = await self._model_obj(ns, model)
            if model_obj is not None:
                self.placement.sent.add(next(k for k in self.placement.model_nodes(ns, model)
                                             if k.node == node))
                await self.send(self._obj_msg(node, model_obj, RT_DEVICEMODEL, OP_INSERT,
                                              kubeclient.DEVICEMODELS))
        await self.send(self._obj_msg(node, dev, RT_DEVICE, OP_INSERT, kubeclient.DEVICES))

    async def _remove_from_node(self, dev: Obj, *, deleted: bool) -> None:
        meta = _meta(dev)
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        found = self.placement.remove(ns, name)
        if found is None:
            return
        node, model, last = found
        if last and model:
            key = ModelKey(node, ns, model)
            model_obj = await self._model_obj(ns, model) if key in self.placement.sent else None
            self.placement.sent.discard(key)
            if model_obj is not None:
                await self.send(self._obj_msg(node, model_obj, RT_DEVICEMODEL, OP_DELETE,
                                              kubeclient.DEVICEMODELS))
        await self._membership(node, None, [dev])
        log.info("device %s/%s leaves node %s%s", ns, name, node, " (deleted)" if deleted else "")
        await self.send(self._obj_msg(node, dev, RT_DEVICE, OP_DELETE, kubeclient.DEVICES))

    async def device_updated(self, old: Obj, dev: Obj) -> None:
        meta = _meta(dev)
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        where = self.placement.where(ns, name)
        new_place = (_node(dev), _model(dev)) if _node(dev) else None
        if where != new_place:
            if where is not None:
                await self._remove_from_node(old, deleted=False)
            if new_place is not None:
                await self._add_to_node(dev)
            return
        if new_place is None:
            return
        if (old.get("spec") != dev.get("spec")
                or _meta(old).get("labels") != meta.get("labels")
                or _meta(old).get("annotations") != meta.get("annotations")):
            await self.send(self._obj_msg(new_place[0], dev, RT_DEVICE, OP_UPDATE,
                                          kubeclient.DEVICES))

    async def device_deleted(self, dev: Obj) -> None:
        await self._remove_from_node(dev, deleted=True)
        meta = _meta(dev)
        try:
            await self.client.delete(kubeclient.DEVICESTATUSES, str(meta.get("name")),
                                     str(meta.get("namespace")))
        except kubeclient.NotFound:
            pass
        except kubeclient.KubeClientError as exc:
            log.warning("devicestatus %s/%s not deleted: %s", meta.get("namespace"),
                        meta.get("name"), exc)

    async def ensure_status(self, dev: Obj) -> None:
        """Get-or-create the DeviceStatus owned by ``dev``."""
        meta = _meta(dev)
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        body = {
            "apiVersion": kubeclient.DEVICESTATUSES.api_version,
            "kind": "DeviceStatus",
            "metadata": {
                "name": name, "namespace": ns,
                "ownerReferences": [{
                    "apiVersion": kubeclient.DEVICES.api_version, "kind": "Device",
                    "name": name, "uid": meta.get("uid"), "controller": True,
                    "blockOwnerDeletion": True,
                }],
            },
            "spec": {},
        }
        try:
            await self.client.create(kubeclient.DEVICESTATUSES, body, ns)
            log.info("devicestatus %s/%s created", ns, name)
        except kubeclient.AlreadyExists:
            pass
        except kubeclient.KubeClientError as exc:
            log.warning("devicestatus %s/%s not created: %s", ns, name, exc)

    # -- models ----------------------------------------------------------------------------

    async def model_added(self, model: Obj) -> None:
        # Devices may have arrived before their model: send it now.
        meta = _meta(model)
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        for key in self.placement.model_nodes(ns, name):
            if key not in self.placement.sent:
                self.placement.sent.add(key)
                await self.send(self._obj_msg(key.node, model, RT_DEVICEMODEL, OP_INSERT,
                                              kubeclient.DEVICEMODELS))

    async def model_updated(self, old: Obj, model: Obj) -> None:
        if old.get("spec") == model.get("spec"):
            return
        meta = _meta(model)
        for key in self.placement.model_nodes(str(meta.get("namespace")), str(meta.get("name"))):
            op = OP_UPDATE if key in self.placement.sent else OP_INSERT
            self.placement.sent.add(key)
            await self.send(self._obj_msg(key.node, model, RT_DEVICEMODEL, op,
                                          kubeclient.DEVICEMODELS))

    async def model_deleted(self, model: Obj) -> None:
        meta = _meta(model)
        for key in self.placement.model_nodes(str(meta.get("namespace")), str(meta.get("name"))):
            if key in self.placement.sent:
                self.placement.sent.discard(key)
                await self.send(self._obj_msg(key.node, model, RT_DEVICEMODEL, OP_DELETE,
                                              kubeclient.DEVICEMODELS))
