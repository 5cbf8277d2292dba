"""Shapes of what edgecontroller sends: downstream objects and replies.

Pure helpers, no I/O. The shapes are KubeEdge's (protocol.md 2.2, 6; the
captures in shared/captures):

* a downstream object message has source ``edgecontroller``, group
  ``resource``, resource ``node/<node>/<ns>/<type>/<name>``, header
  ``resourceversion`` = the object's, content = the object with
  ``apiVersion``/``kind`` set;
* node, lease and patch replies are ``ObjectResp``:
  ``{"Object": <object or null>, "Err": null | {"ErrStatus": <Status>}}``;
  a typed Go client leaves ``kind``/``apiVersion`` empty on the object and on
  the Status, so both are dropped, exactly as in the captures;
* a failed query is answered with the serialised Go error alone,
  ``{"ErrStatus": <Status>}``.
"""

from __future__ import annotations

from typing import Any

import kubeclient
from beehive.constants import GROUP_RESOURCE, MOD_EDGECONTROLLER
from beehive.message import Message
from kecommon.resources import build_resource

__all__ = [
    "err_status",
    "object_message",
    "object_resp",
    "reply",
    "resource_version",
]


def resource_version(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def object_message(
    node: str,
    obj: dict[str, Any],
    resource_type: str,
    operation: str,
    *,
    ref: kubeclient.ResourceRef | None = None,
    source: str = MOD_EDGECONTROLLER,
    group: str = GROUP_RESOURCE,
) -> Message:
    """A downstream message carrying ``obj`` to ``node``."""
    if ref is not None:
        kubeclient.with_type(obj, ref)
    meta = obj.get("metadata") or {}
    return Message.new(
        source=source,
        group=group,
        operation=operation,
        resource=build_resource(node, str(meta.get("namespace") or ""), resource_type,
                                str(meta.get("name") or "")),
        content=obj,
        resource_version=resource_version(obj),
    )


def _untyped(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def err_status(err: kubeclient.ApiError) -> dict[str, Any]:
    """``{"ErrStatus": ...}``: a Go ``*StatusError`` as encoding/json writes it."""
    status = _untyped(err.body)
    status.setdefault("metadata", {})
    return {"ErrStatus": status}


def object_resp(
    obj: dict[str, Any] | None, err: kubeclient.ApiError | None = None
) -> dict[str, Any]:
    """``ObjectResp{Object, Err}`` (``common/types/types.go``)."""
    return {
        "Object": _untyped(obj) if obj is not None else None,
        "Err": err_status(err) if err is not None else None,
    }


def reply(request: Message, content: Any, *, resource_version: str = "") -> Message:
    """The answer to an upstream request: ``NewRespByMessage`` semantics, but from
    edgecontroller/resource and on the request's (node-prefixed) resource."""
    resp = request.response(content)
    resp.route.source = MOD_EDGECONTROLLER
    resp.route.group = GROUP_RESOURCE
    resp.header.resource_version = resource_version
    return resp
