"""MetaClient: how edged asks metamanager (and through it the cloud) for objects.

Mirrors ``edge/pkg/metamanager/client/*.go``: every call is a beehive message
with source ``edged`` and group ``meta`` sent with ``send_sync`` to
``metamanager``, whose resource and operation are those KubeEdge's edge puts
on the wire (protocol.md 2.2, 6.1-6.4). Answers are parsed from the shapes the
cloud uses (:mod:`edgecore.metamanager.shapes`) into objects or errors::

    MetaError
    ├── MetaNotFound          404 from the cloud or not in the local store
    ├── MetaAlreadyExists     409 (e.g. create_node of a registered node)
    ├── MetaTimeout           no answer in time
    └── MetaUnavailable       the cloud is disconnected and the store cannot answer
                              (``queued`` is True when a status patch was kept
                              and will be sent when the cloud returns)
"""

from __future__ import annotations

import json
import logging
from typing import Any

from beehive import constants as c
from beehive.context import Context
from beehive.exceptions import ContextError, SyncTimeout
from beehive.message import Message
from edgecore.metamanager.shapes import REASON_QUEUED, split_answer

log = logging.getLogger(__name__)

__all__ = [
    "MetaAlreadyExists",
    "MetaClient",
    "MetaError",
    "MetaNotFound",
    "MetaTimeout",
    "MetaUnavailable",
]

LEASE_NAMESPACE = "kube-node-lease"


class MetaError(Exception):
    """A metamanager request failed; ``status`` is the k8s Status when there is one."""

    def __init__(self, message: str, *, status: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status or {}

    @property
    def code(self) -> int:
        return int(self.status.get("code") or 0)

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")


class MetaNotFound(MetaError):
    pass


class MetaAlreadyExists(MetaError):
    pass


class MetaTimeout(MetaError):
    pass


class MetaUnavailable(MetaError):
    @property
    def queued(self) -> bool:
        return self.reason == REASON_QUEUED


def _error_for(status: dict[str, Any], what: str) -> MetaError:
    code = int(status.get("code") or 0)
    reason = str(status.get("reason") or "")
    text = f"{what}: {status.get('message') or reason or 'failed'}"
    if code == 404 or reason == "NotFound":
        return MetaNotFound(text, status=status)
    if code == 409 or reason == "AlreadyExists":
        return MetaAlreadyExists(text, status=status)
    if code == 504 or reason == "Timeout":
        return MetaTimeout(text, status=status)
    if code == 503 or reason in ("ServiceUnavailable", REASON_QUEUED):
        return MetaUnavailable(text, status=status)
    return MetaError(text, status=status)


def _compact(patch: dict[str, Any]) -> str:
    # kubelet sends patches as JSON text inside the message (protocol.md 6.2)
    # Go marshals the patch map with sorted keys and no spaces
    return json.dumps(patch, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _name_of(obj: dict[str, Any]) -> str:
    name = obj.get("metadata", {}).get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("the object has no metadata.name")
    return name


class MetaClient:
    """edged's client of metamanager."""

    def __init__(self, ctx: Context, *, source: str = c.MOD_EDGED, timeout: float = 60.0) -> None:
        self._ctx = ctx
        self._source = source
        self._timeout = timeout

    def build(self, operation: str, resource: str, content: Any = None) -> Message:
        """The request message, exactly as it goes to metamanager (and the wire)."""
        return Message.new(
            source=self._source,
            group=c.GROUP_META,
            operation=operation,
            resource=resource,
            content=content,
        )

    async def _call(self, operation: str, resource: str, content: Any = None) -> Any:
        msg = self.build(operation, resource, content)
        what = f"{operation} {resource}"
        try:
            resp = await self._ctx.send_sync(c.MOD_METAMANAGER, msg, self._timeout)
        except SyncTimeout as exc:
            raise MetaTimeout(f"{what}: no answer within {self._timeout}s") from exc
        except ContextError as exc:
            raise MetaUnavailable(f"{what}: metamanager is not reachable: {exc}") from exc
        answer = split_answer(resp.content)
        if resp.operation == c.OP_ERROR or not answer.ok:
            raise _error_for(answer.error or {}, what)
        return answer.obj

    async def _object(self, operation: str, resource: str, content: Any = None) -> dict[str, Any]:
        obj = await self._call(operation, resource, content)
        if not isinstance(obj, dict):
            raise MetaError(f"{operation} {resource}: the answer is not an object: {obj!r}")
        return obj

    # -- configmaps, secrets, tokens ------------------------------------------------

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._object(c.OP_QUERY, f"{namespace}/{c.RT_CONFIGMAP}/{name}")

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._object(c.OP_QUERY, f"{namespace}/{c.RT_SECRET}/{name}")

    async def get_service_account_token(
        self, namespace: str, sa: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._object(
            c.OP_QUERY, f"{namespace}/{c.RT_SERVICEACCOUNTTOKEN}/{sa}", request
        )

    # -- node -------------------------------------------------------------------------

    async def create_node(self, node: dict[str, Any]) -> dict[str, Any]:
        name = _name_of(node)
        return await self._object(c.OP_INSERT, f"{c.NULL_NAMESPACE}/{c.RT_NODE}/{name}", node)

    async def get_node(self, name: str) -> dict[str, Any]:
        return await self._object(c.OP_QUERY, f"{c.NULL_NAMESPACE}/{c.RT_NODE}/{name}")

    async def patch_node_status(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._object(
            c.OP_PATCH, f"{c.NULL_NAMESPACE}/{c.RT_NODEPATCH}/{name}", _compact(patch)
        )

    # -- lease --------------------------------------------------------------------------

    async def get_lease(self, name: str) -> dict[str, Any]:
        return await self._object(c.OP_QUERY, f"{LEASE_NAMESPACE}/{c.RT_LEASE}/{name}")

    async def create_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        ns = lease.get("metadata", {}).get("namespace") or LEASE_NAMESPACE
        return await self._object(c.OP_INSERT, f"{ns}/{c.RT_LEASE}/{_name_of(lease)}", lease)

    async def update_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        ns = lease.get("metadata", {}).get("namespace") or LEASE_NAMESPACE
        return await self._object(c.OP_UPDATE, f"{ns}/{c.RT_LEASE}/{_name_of(lease)}", lease)

    # -- pods -----------------------------------------------------------------------------

    async def patch_pod_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._object(
            c.OP_PATCH, f"{namespace}/{c.RT_PODPATCH}/{name}", _compact(patch)
        )

    async def delete_pod(self, namespace: str, name: str, options: dict[str, Any]) -> None:
        """Delete the pod in the API; a pod already gone (NotFound) is success."""
        try:
            await self._call(c.OP_DELETE, f"{namespace}/{c.RT_POD}/{name}", options)
        except MetaNotFound:
            log.info("metaclient: pod %s/%s is already gone from the API", namespace, name)

    async def list_pods(self) -> list[dict[str, Any]]:
        """Every pod in the local store (edge autonomy: no cloud needed)."""
        pods = await self._call(c.OP_QUERY, f"{c.NULL_NAMESPACE}/{c.RT_PODLIST}")
        if not isinstance(pods, list):
            raise MetaError(f"list_pods: the answer is not a list: {pods!r}")
        return [p for p in pods if isinstance(p, dict)]
