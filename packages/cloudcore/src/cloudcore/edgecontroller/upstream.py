"""Edge -> cloud: answer the requests cloudhub delivers to group edgecontroller.

Mirrors ``cloud/pkg/edgecontroller/controller/upstream.go`` (protocol.md 6).
The resource arrives prefixed, ``node/<node>/<ns>/<type>[/<name>]``; the node
comes from the connection, never from the message body. Each reply is built
like ``NewRespByMessage`` (new id, parent = request id, same resource) with
source ``edgecontroller``, group ``resource``, and goes to module ``cloudhub``.

=========================  ===========  =========================================
type                       operation    action / reply content
=========================  ===========  =========================================
node                       insert       register: create (name forced, annotation
                                        ``cloudcore``) -> ObjectResp
node                       query        get -> ObjectResp (+resourceversion)
node                       update       replace -> ``OK``
nodepatch                  patch        strategic merge on ``nodes/<n>/status``
                                        -> ObjectResp (+resourceversion)
nodestatus (deprecated)    update       status replaced -> ``OK``
lease                      query        get -> ObjectResp
lease                      insert       create -> ObjectResp
lease                      update       replace -> ObjectResp
podpatch                   patch        strategic merge on ``pods/<p>/status``
                                        -> ObjectResp (+resourceversion)
pod                        delete       delete with DeleteOptions -> ``OK``
pod                        insert       create (static/mirror pod) -> ObjectResp
configmap / secret         query        from the informer cache (API on a miss)
                                        -> the object (+resourceversion), or
                                        ``{"ErrStatus": ...}``
serviceaccounttoken        query        TokenRequest -> the TokenRequest
event                      insert/      create / replace / strategic patch;
                           update/patch no reply
``k8s/ca.crt``             query        the API server's CA (PEM text)
=========================  ===========  =========================================

Connection notices from cloudhub (resource ``node/<id>``, operation
``connected``/``disconnected``) set the ``cloudcore`` annotation and feed
:class:`~cloudcore.edgecontroller.health.NodeHealth`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import kubeclient
from beehive.constants import (
    CONTENT_OK,
    OP_CONNECTED,
    OP_DELETE,
    OP_DISCONNECTED,
    OP_INSERT,
    OP_PATCH,
    OP_QUERY,
    OP_UPDATE,
    RESOURCE_K8S_CA,
    RT_CONFIGMAP,
    RT_EVENT,
    RT_LEASE,
    RT_NODE,
    RT_NODEPATCH,
    RT_NODESTATUS,
    RT_POD,
    RT_PODPATCH,
    RT_SECRET,
    RT_SERVICEACCOUNTTOKEN,
)
from beehive.context import Context
from beehive.exceptions import BeehiveError
from beehive.message import Message
from cloudcore.edgecontroller.health import NodeHealth
from cloudcore.edgecontroller.messages import (
    err_status,
    object_resp,
    reply,
    resource_version,
)
from kecommon.resources import ResourceError, parse_node_resource

__all__ = ["CLOUDCORE_ANNOTATION", "Upstream"]

log = logging.getLogger(__name__)

#: node annotation naming the cloudcore a node is connected to
CLOUDCORE_ANNOTATION = "cloudcore"

Obj = dict[str, Any]


class BadRequest(ValueError):
    """The edge sent something we cannot act on."""


def _decode(content: Any) -> Any:
    """GetContentData semantics: a JSON string is decoded, anything else kept."""
    if isinstance(content, str | bytes):
        try:
            return json.loads(content)
        except ValueError as exc:
            raise BadRequest(f"content is not JSON: {exc}") from exc
    return content


def _as_text(content: Any) -> str:
    """A patch body as JSON text, however it arrived."""
    return content if isinstance(content, str) else json.dumps(content)


class Upstream:
    """Handlers for upstream messages; one instance per edgecontroller."""

    def __init__(
        self,
        ctx: Context,
        client: kubeclient.KubeClient,
        health: NodeHealth,
        *,
        cloudcore_address: str,
        cluster_ca: str = "",
        configmaps: Callable[[], kubeclient.Informer | None],
        secrets: Callable[[], kubeclient.Informer | None],
        clock: Callable[[], float] = time.monotonic,
        target: str = "cloudhub",
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.health = health
        self.cloudcore_address = cloudcore_address
        self.cluster_ca = cluster_ca
        self._configmaps = configmaps
        self._secrets = secrets
        self.clock = clock
        self.target = target
        self._handlers: dict[tuple[str, str], Callable[[Message, str, str, str],
                                                       Awaitable[None]]] = {
            (RT_NODE, OP_INSERT): self.register_node,
            (RT_NODE, OP_QUERY): self.query_node,
            (RT_NODE, OP_UPDATE): self.update_node,
            (RT_NODEPATCH, OP_PATCH): self.patch_node,
            (RT_NODESTATUS, OP_UPDATE): self.update_node_status,
            (RT_LEASE, OP_QUERY): self.query_lease,
            (RT_LEASE, OP_INSERT): self.create_lease,
            (RT_LEASE, OP_UPDATE): self.update_lease,
            (RT_PODPATCH, OP_PATCH): self.patch_pod,
            (RT_POD, OP_DELETE): self.delete_pod,
            (RT_POD, OP_INSERT): self.create_pod,
            (RT_CONFIGMAP, OP_QUERY): self.query_configmap,
            (RT_SECRET, OP_QUERY): self.query_secret,
            (RT_SERVICEACCOUNTTOKEN, OP_QUERY): self.service_account_token,
            (RT_EVENT, OP_INSERT): self.event,
            (RT_EVENT, OP_UPDATE): self.event,
            (RT_EVENT, OP_PATCH): self.event,
        }

    # -- entry point ------------------------------------------------------------------

    @staticmethod
    def node_key(msg: Message) -> str:
        """The node a message is about (for per-node ordering)."""
        parts = msg.resource.split("/", 2)
        return parts[1] if len(parts) >= 2 and parts[0] == "node" else ""

    async def handle(self, msg: Message) -> None:
        """Act on one upstream message and send its reply (if it has one)."""
        res = msg.resource
        parts = res.split("/")
        if len(parts) == 2 and parts[0] == "node" and msg.operation in (
            OP_CONNECTED, OP_DISCONNECTED
        ):
            await self.connection_event(parts[1], msg.operation)
            return
        if len(parts) >= 4 and "/".join(parts[2:]) == RESOURCE_K8S_CA:
            await self.send(reply(msg, self._cluster_ca()))
            return
        try:
            node, path = parse_node_resource(res)
        except ResourceError:
            log.warning("edgecontroller: ignoring message with resource %r (%s)", res,
                        msg.describe())
            return
        handler = self._handlers.get((path.type, msg.operation))
        if handler is None:
            log.warning("node %s: unsupported %s on %s (msg %s)", node, msg.operation,
                        path.type, msg.msg_id)
            status = kubeclient.errors.synthesize_status(
                405, f"{msg.operation} of {path.type} is not supported by cloudcore")
            if msg.operation == OP_QUERY:
                await self.send(reply(msg, {"ErrStatus": _drop_type(status)}))
            return
        try:
            await handler(msg, node, path.namespace, path.name)
        except BadRequest as exc:
            log.warning("node %s: bad %s %s: %s (msg %s)", node, msg.operation, res, exc,
                        msg.msg_id)
            status = kubeclient.errors.synthesize_status(400, str(exc))
            await self.send(reply(msg, object_resp(None, kubeclient.errors.error_from_status(
                400, status))))
        except kubeclient.ApiConnectionError as exc:
            log.error("node %s: %s %s failed, API unreachable: %s", node, msg.operation, res, exc)
            status = kubeclient.errors.synthesize_status(503, str(exc))
            await self.send(reply(msg, object_resp(None, kubeclient.errors.error_from_status(
                503, status))))

    async def send(self, msg: Message) -> None:
        try:
            await self.ctx.send(self.target, msg)
        except BeehiveError as exc:
            log.error("cannot hand reply %s to %s: %s", msg.describe(), self.target, exc)

    def _cluster_ca(self) -> str:
        if self.cluster_ca:
            return self.cluster_ca
        data = self.client.config.ca_data
        return data.decode() if data else ""

    # -- connection notices ---------------------------------------------------------

    async def connection_event(self, node: str, operation: str) -> None:
        now = self.clock()
        if operation == OP_CONNECTED:
            log.info("node %s connected", node)
            self.health.connected(node, now)
            if self.cloudcore_address:
                try:
                    await self.client.patch(
                        kubeclient.NODES, node,
                        {"metadata": {"annotations": {
                            CLOUDCORE_ANNOTATION: self.cloudcore_address}}},
                    )
                except kubeclient.NotFound:
                    pass  # not registered yet: register sets the annotation
                except kubeclient.ApiError as exc:
                    log.warning("node %s: cannot set annotation: %s", node, exc)
        else:
            log.info("node %s disconnected", node)
            self.health.disconnected(node, now)

    # -- nodes ------------------------------------------------------------------------

    async def register_node(self, msg: Message, node: str, ns: str, name: str) -> None:
        body = _decode(msg.content)
        if not isinstance(body, dict):
            raise BadRequest("node register needs a Node object")
        body = dict(body)
        meta = dict(body.get("metadata") or {})
        meta["name"] = name or node
        if self.cloudcore_address:
            meta["annotations"] = {**(meta.get("annotations") or {}),
                                   CLOUDCORE_ANNOTATION: self.cloudcore_address}
        for key in ("resourceVersion", "uid", "creationTimestamp"):
            meta.pop(key, None)
        body["metadata"] = meta
        body["apiVersion"], body["kind"] = "v1", "Node"
        self.health.heard(node, self.clock())
        try:
            created = await self.client.create(kubeclient.NODES, body)
        except kubeclient.ApiError as exc:
            if not isinstance(exc, kubeclient.AlreadyExists):
                log.warning("node %s: register failed: %s", node, exc)
            await self.send(reply(msg, object_resp(None, exc)))
            return
        log.info("node %s registered (uid %s)", node, created["metadata"].get("uid"))
        await self.send(reply(msg, object_resp(created)))

    async def query_node(self, msg: Message, node: str, ns: str, name: str) -> None:
        try:
            obj = await self.client.get(kubeclient.NODES, name or node)
        except kubeclient.ApiError as exc:
            await self.send(reply(msg, object_resp(None, exc)))
            return
        await self.send(reply(msg, object_resp(obj), resource_version=resource_version(obj)))

    async def update_node(self, msg: Message, node: str, ns: str, name: str) -> None:
        body = _decode(msg.content)
        if not isinstance(body, dict):
            raise BadRequest("node update needs a Node object")
        body = {**body, "apiVersion": "v1", "kind": "Node"}
        body["metadata"] = {**(body.get("metadata") or {}), "name": name or node}
        try:
            await self.client.replace(kubeclient.NODES, name or node, body)
        except kubeclient.ApiError as exc:
            await self.send(reply(msg, err_status(exc)))
            return
        await self.send(reply(msg, CONTENT_OK))

    async def patch_node(self, msg: Message, node: str, ns: str, name: str) -> None:
        self.health.heard(node, self.clock())
        try:
            obj = await self.client.patch(
                kubeclient.NODES, name or node, _as_text(msg.content),
                patch_type="strategic", subresource="status",
            )
        except kubeclient.ApiError as exc:
            log.warning("node %s: nodepatch failed: %s", node, exc)
            await self.send(reply(msg, object_resp(None, exc)))
            return
        await self.send(reply(msg, object_resp(obj), resource_version=resource_version(obj)))

    async def update_node_status(self, msg: Message, node: str, ns: str, name: str) -> None:
        body = _decode(msg.content)
        if not isinstance(body, dict) or not isinstance(body.get("Status"), dict):
            raise BadRequest("nodestatus needs {UID, Status}")
        self.health.heard(node, self.clock())
        for _ in range(3):
            try:
                current = await self.client.get(kubeclient.NODES, name or node)
                current["status"] = body["Status"]
                await self.client.replace(kubeclient.NODES, name or node, current,
                                          subresource="status")
                break
            except kubeclient.Conflict:
                continue
            except kubeclient.ApiError as exc:
                await self.send(reply(msg, err_status(exc)))
                return
        await self.send(reply(msg, CONTENT_OK))

    # -- leases -----------------------------------------------------------------------

    async def query_lease(self, msg: Message, node: str, ns: str, name: str) -> None:
        try:
            obj = await self.client.get(kubeclient.LEASES, name, ns)
        except kubeclient.ApiError as exc:
            await self.send(reply(msg, object_resp(None, exc)))
            return
        await self.send(reply(msg, object_resp(obj)))

    async def create_lease(self, msg: Message, node: str, ns: str, name: str) -> None:
        await self._write_lease(msg, node, ns, name, create=True)

    async def update_lease(self, msg: Message, node: str, ns: str, name: str) -> None:
        await self._write_lease(msg, node, ns, name, create=False)

    async def _write_lease(self, msg: Message, node: str, ns: str, name: str, *,
                           create: bool) -> None:
        body = _decode(msg.content)
        if not isinstance(body, dict):
            raise BadRequest("lease needs a Lease object")
        body = {**body, "apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
        body["metadata"] = {**(body.get("metadata") or {}), "name": name, "namespace": ns}
        self.health.heard(node, self.clock())
        try:
            if create:
                obj = await self.client.create(kubeclient.LEASES, body, ns)
            else:
                obj = await self.client.replace(kubeclient.LEASES, name, body, ns)
        except kubeclient.ApiError as exc:
            await self.send(reply(msg, object_resp(None, exc)))
            return
        await self.send(reply(msg, object_resp(obj)))

    # -- pods -------------------------------------------------------------------------

    async def patch_pod(self, msg: Message, node: str, ns: str, name: str) -> None:
        try:
            obj = await self.client.patch(
                kubeclient.PODS, name, _as_text(msg.content), ns,
                patch_type="strategic", subresource="status",
            )
        except kubeclient.ApiError as exc:
            log.warning("node %s: podpatch %s/%s failed: %s", node, ns, name, exc)
            await self.send(reply(msg, object_resp(None, exc)))
            return
        await self.send(reply(msg, object_resp(obj), resource_version=resource_version(obj)))

    async def delete_pod(self, msg: Message, node: str, ns: str, name: str) -> None:
        content = msg.content
        options: Obj | None
        if isinstance(content, str) and not content.lstrip().startswith("{"):
            # legacy form: the pod UID as a plain string
            options = {"preconditions": {"uid": content}} if content else None
        else:
            decoded = _decode(content) if content is not None else None
            if decoded is not None and not isinstance(decoded, dict):
                raise BadRequest("pod delete needs DeleteOptions")
            options = decoded
        if options is not None:
            options = {"apiVersion": "v1", "kind": "DeleteOptions", **options}
        try:
            await self.client.delete(kubeclient.PODS, name, ns, body=options)
        except kubeclient.NotFound:
            pass  # already gone: what the edge wanted
        except kubeclient.ApiError as exc:
            log.warning("node %s: delete pod %s/%s failed: %s", node, ns, name, exc)
            await self.send(reply(msg, err_status(exc)))
            return
        log.info("node %s: pod %s/%s deleted (msg %s)", node, ns, name, msg.msg_id)
        await self.send(reply(msg, CONTENT_OK))

    async def create_pod(self, msg: Message, node: str, ns: str, name: str) -> None:
        body = _decode(msg.content)
        if not isinstance(body, dict):
            raise BadRequest("pod insert needs a Pod object")
        body = {**body, "apiVersion": "v1", "kind": "Pod"}
        body["metadata"] = {**(body.get("metadata") or {}), "name": name, "namespace": ns}
        try:
            obj = await self.client.create(kubeclient.PODS, body, ns)
        except kubeclient.ApiError as exc:
            await self.send(reply(msg, object_resp(None, exc)))
            return
        await self.send(reply(msg, object_resp(obj)))

    # -- configmaps, secrets, tokens ----------------------------------------------------

    async def query_configmap(self, msg: Message, node: str, ns: str, name: str) -> None:
        await self._query_cached(msg, node, ns, name, self._configmaps(), kubeclient.CONFIGMAPS)

    async def query_secret(self, msg: Message, node: str, ns: str, name: str) -> None:
        await self._query_cached(msg, node, ns, name, self._secrets(), kubeclient.SECRETS)

    async def _query_cached(self, msg: Message, node: str, ns: str, name: str,
                            informer: kubeclient.Informer | None,
                            ref: kubeclient.ResourceRef) -> None:
        obj = informer.get(name, ns) if informer is not None else None
        if obj is None:
            # A miss may be an object the watch has not delivered yet: ask the API.
            try:
                obj = kubeclient.with_type(await self.client.get(ref, name, ns), ref)
            except kubeclient.ApiError as exc:
                await self.send(reply(msg, err_status(exc)))
                return
        await self.send(reply(msg, obj, resource_version=resource_version(obj)))

    async def service_account_token(self, msg: Message, node: str, ns: str, name: str) -> None:
        body = _decode(msg.content)
        if not isinstance(body, dict):
            raise BadRequest("serviceaccounttoken needs a TokenRequest")
        try:
            token = await self.client.create_token(ns, name, body)
        except kubeclient.ApiError as exc:
            log.warning("node %s: token for %s/%s failed: %s", node, ns, name, exc)
            await self.send(reply(msg, err_status(exc)))
            return
        await self.send(reply(msg, token))

    # -- events -----------------------------------------------------------------------------

    async def event(self, msg: Message, node: str, ns: str, name: str) -> None:
        body = _decode(msg.content)
        if not isinstance(body, dict):
            raise BadRequest("event needs an Event")
        try:
            if msg.operation == OP_PATCH:
                event = body.get("event") or {}
                patch = body.get("patchData") or "{}"
                ev_name = (event.get("metadata") or {}).get("name") or name
                await self.client.patch(kubeclient.EVENTS, ev_name, _as_text(patch), ns,
                                        patch_type="strategic")
            elif msg.operation == OP_INSERT:
                body = {**body, "apiVersion": "v1", "kind": "Event"}
                await self.client.create(kubeclient.EVENTS, body, ns)
            else:
                body = {**body, "apiVersion": "v1", "kind": "Event"}
                await self.client.replace(kubeclient.EVENTS, name, body, ns)
        except kubeclient.AlreadyExists:
            pass
        except kubeclient.ApiError as exc:
            log.info("node %s: event %s %s/%s not recorded: %s", node, msg.operation, ns, name,
                     exc)


def _drop_type(status: Obj) -> Obj:
    return {k: v for k, v in status.items() if k not in ("kind", "apiVersion")}
