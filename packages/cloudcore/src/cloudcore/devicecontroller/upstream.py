"""Edge -> cloud for devices (``cloud/pkg/devicecontroller/controller/upstream.go``).

cloudhub delivers messages from source ``twin`` to group devicecontroller with
resource ``node/<node>/device/<ns>/<name>/<suffix>`` (protocol.md 7.3):

* ``twin/edge_updated``: for each reported twin whose name is a property of
  the Device, ``status.twins[]`` of the DeviceStatus gets ``reported`` (the
  edge's actual value) and ``observedDesired`` (its expected value), each with
  metadata ``timestamp`` and ``type``;
* ``state/update``: ``status.state`` and ``status.lastOnlineTime``.

Each is confirmed with ``response`` / content ``OK`` on resource
``node/<node>/twin``, group ``twin``, source ``devicecontroller``, parent = the
edge's msg id. A transient API failure is not confirmed, so the edge's twin
module resends it (it retries unconfirmed messages after 60 s).
``membership/detail`` requests are ignored, as KubeEdge does.

Beyond KubeEdge, a report is applied only when the Device's ``spec.nodeName``
is the node the message came from (the connection's, never the message's):
one node cannot write the status of another node's device.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import kubeclient
from beehive.constants import (
    CONTENT_OK,
    GROUP_TWIN,
    MOD_DEVICECONTROLLER,
    RT_TWIN,
)
from beehive.context import Context
from beehive.exceptions import BeehiveError
from beehive.message import Message
from kecommon.resources import build_device_resource

__all__ = ["DeviceUpstream", "merge_twins"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def _value_meta(part: Any, twin_type: str) -> Obj | None:
    if not isinstance(part, dict):
        return None
    meta = part.get("metadata") or {}
    out_meta: dict[str, str] = {}
    if isinstance(meta, dict) and meta.get("timestamp") is not None:
        out_meta["timestamp"] = str(meta["timestamp"])
    if twin_type:
        out_meta["type"] = twin_type
    value = part.get("value")
    return {"value": "" if value is None else str(value), "metadata": out_meta}


def merge_twins(current: list[Obj], reported: dict[str, Any], properties: set[str]) -> list[Obj]:
    """``status.twins`` after applying an ``edge_updated`` twin map.

    Only twins that are properties of the Device are taken; the others are
    kept unchanged; order is preserved and new ones are appended.
    """
    twins = [dict(t) for t in current if isinstance(t, dict)]
    index = {t.get("propertyName"): t for t in twins}
    for prop, twin in reported.items():
        if prop not in properties or not isinstance(twin, dict):
            continue
        ttype = str((twin.get("metadata") or {}).get("type") or "")
        entry = index.get(prop)
        if entry is None:
            entry = {"propertyName": prop}
            twins.append(entry)
            index[prop] = entry
        actual = _value_meta(twin.get("actual"), ttype)
        expected = _value_meta(twin.get("expected"), ttype)
        if actual is not None:
            entry["reported"] = actual
        if expected is not None:
            entry["observedDesired"] = expected
    return twins


class DeviceUpstream:
    def __init__(
        self,
        ctx: Context,
        client: kubeclient.KubeClient,
        *,
        devices: Callable[[], kubeclient.Informer | None],
        target: str = "cloudhub",
    ) -> None:
        self.ctx = ctx
        self.client = client
        self._devices = devices
        self.target = target

    @staticmethod
    def node_key(msg: Message) -> str:
        parts = msg.resource.split("/", 2)
        return parts[1] if len(parts) >= 2 and parts[0] == "node" else ""

    async def handle(self, msg: Message) -> None:
        parts = msg.resource.split("/")
        if len(parts) < 3 or parts[0] != "node":
            log.warning("devicecontroller: ignoring resource %r (msg %s)", msg.resource,
                        msg.msg_id)
            return
        node, rest = parts[1], parts[2:]
        if rest[:2] == ["membership", "detail"]:
            log.debug("node %s: membership/detail ignored (as KubeEdge does)", node)
            return
        if len(rest) < 5 or rest[0] != "device":
            log.warning("node %s: unsupported device resource %r (msg %s)", node, msg.resource,
                        msg.msg_id)
            return
        ns, name, suffix = rest[1], rest[2], "/".join(rest[3:])
        try:
            content = json.loads(msg.content) if isinstance(msg.content, str | bytes) \
                else msg.content
        except ValueError:
            log.warning("node %s: %s content is not JSON (msg %s)", node, suffix, msg.msg_id)
            await self.confirm(msg, node)  # resending it would not help
            return
        if not isinstance(content, dict):
            content = {}
        if suffix not in ("twin/edge_updated", "state/update"):
            log.warning("node %s: unsupported device message %s (msg %s)", node, suffix,
                        msg.msg_id)
            return
        try:
            device = await self._device(ns, name)
            bound = str((device.get("spec") or {}).get("nodeName") or "")
            if bound != node:
                # The node is the connection's; the resource names the device.
                # Confirmed so the edge does not resend it, but not applied.
                log.warning("node %s: %s for device %s/%s refused: it is bound to %r (msg %s)",
                            node, suffix, ns, name, bound, msg.msg_id)
            elif suffix == "twin/edge_updated":
                await self.twin_updated(node, ns, name, content, device=device)
            else:
                await self.state_updated(node, ns, name, content)
        except (kubeclient.ApiConnectionError, kubeclient.ServerError,
                kubeclient.TooManyRequests) as exc:
            log.warning("node %s: %s for %s/%s not applied (%s); not confirmed", node, suffix,
                        ns, name, exc)
            return
        except kubeclient.ApiError as exc:
            log.warning("node %s: %s for %s/%s rejected: %s", node, suffix, ns, name, exc)
        await self.confirm(msg, node)

    async def confirm(self, msg: Message, node: str) -> None:
        resp = msg.response(CONTENT_OK)
        resp.route.source = MOD_DEVICECONTROLLER
        resp.route.group = GROUP_TWIN
        resp.route.resource = build_device_resource(node, RT_TWIN)
        try:
            await self.ctx.send(self.target, resp)
        except BeehiveError as exc:
            log.error("cannot hand confirm %s to %s: %s", resp.describe(), self.target, exc)

    async def _patch_status(self, ns: str, name: str, status: Obj) -> None:
        body = {"status": status}
        try:
            await self.client.patch(kubeclient.DEVICESTATUSES, name, body, ns,
                                    subresource="status")
        except kubeclient.NotFound:
            # A DeviceStatus CRD without the status subresource serves no
            # /status path; patch the object itself.
            await self.client.patch(kubeclient.DEVICESTATUSES, name, body, ns)

    async def _device(self, ns: str, name: str) -> Obj:
        """The Device, from the informer cache or else the API (raises NotFound)."""
        informer = self._devices()
        device = informer.get(name, ns) if informer is not None else None
        if device is None:
            device = await self.client.get(kubeclient.DEVICES, name, ns)
        return device

    async def twin_updated(self, node: str, ns: str, name: str, content: Obj, *,
                           device: Obj | None = None) -> None:
        reported = content.get("twin") or {}
        if not isinstance(reported, dict):
            return
        if device is None:
            device = await self._device(ns, name)
        props = {str(p.get("name")) for p in (device.get("spec") or {}).get("properties") or []
                 if isinstance(p, dict)}
        current = await self.client.get(kubeclient.DEVICESTATUSES, name, ns)
        twins = merge_twins((current.get("status") or {}).get("twins") or [], reported, props)
        await self._patch_status(ns, name, {"twins": twins})
        log.info("node %s: twins of %s/%s reported: %s", node, ns, name,
                 ", ".join(sorted(p for p in reported if p in props)))

    async def state_updated(self, node: str, ns: str, name: str, content: Obj) -> None:
        dev = content.get("device") or {}
        status: Obj = {}
        if isinstance(dev, dict):
            if dev.get("state") is not None:
                status["state"] = str(dev["state"])
            if dev.get("lastOnlineTime"):
                status["lastOnlineTime"] = str(dev["lastOnlineTime"])
        if status:
            await self._patch_status(ns, name, status)
            log.info("node %s: state of %s/%s: %s", node, ns, name, status)
