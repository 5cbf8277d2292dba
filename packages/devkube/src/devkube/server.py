"""The aiohttp application: discovery, CRUD, watch streaming and bearer-token auth.

Every request under /api and /apis is parsed into (group, version, namespace, plural,
name, subresource) the way kube-apiserver's RequestInfoFactory does
(k8s.io/apiserver/pkg/endpoints/request/requestinfo.go) and handed to ``api.Api``.
Failures are ``kind: Status`` bodies; an unexpected exception answers 500 and the
server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from devkube import errors, openapi, protobuf, selectors, tables
from devkube.api import (
    PATCH_APPLY,
    PATCH_JSON,
    PATCH_MERGE,
    PATCH_STRATEGIC,
    Api,
    rfc3339,
)
from devkube.resources import ALL_VERBS, ResourceInfo
from devkube.store import Expired, StoredEvent, dumps

log = logging.getLogger(__name__)

# kube-apiserver's default --max-request-body-bytes is 3 MiB; we answer 413 above it.
MAX_BODY_BYTES = 3 * 1024 * 1024
DEFAULT_WATCH_TIMEOUT = 1800.0
DEFAULT_BOOKMARK_INTERVAL = 60.0
# How often an idle watch checks that its client is still connected.
IDLE_CHECK_INTERVAL = 5.0
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/version"})
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-devkube",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

API_KEY = web.AppKey("api", Api)


@dataclass
class ServerConfig:
    admin_token: str
    max_body: int = MAX_BODY_BYTES
    bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL
    address: str = "127.0.0.1:0"


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=dumps(body).encode(), status=status, content_type="application/json"
    )


def error_response(err: errors.ApiError) -> web.Response:
    return json_response(err.status(), err.code)


@dataclass
class RequestInfo:
    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None
    subresource: str | None
    watch_path: bool


def parse_path(path: str) -> RequestInfo | str | None:
    """A resource request, a discovery document name, or None (unknown path)."""
    segs = [s for s in path.split("/") if s]
    if not segs:
        return None
    if segs[0] == "api":
        if len(segs) == 1:
            return "api"
        if segs[1] != "v1":
            return None
        if len(segs) == 2:
            return "resources"
        group, version, rest = "", "v1", segs[2:]
    elif segs[0] == "apis":
        if len(segs) == 1:
            return "apis"
        if len(segs) == 2:
            return "group"
        if len(segs) == 3:
            return "resources"
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return None
    watch_path = False
    if rest and rest[0] == "watch":
        watch_path, rest = True, rest[1:]
    namespace: str | None = None
    if rest and rest[0] == "namespaces" and len(rest) >= 3 and not (
        group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return RequestInfo(group, version, namespace, plural, name, sub, watch_path)


# -- discovery -----------------------------------------------------------------------------


def _resource_entries(infos: list[ResourceInfo]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for info in infos:
        entry: dict[str, Any] = {
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": list(ALL_VERBS),
        }
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        out.append(entry)
        for sub in sorted(info.subresources):
            if sub == "status":
                out.append({"name": f"{info.plural}/status", "singularName": "",
                            "namespaced": info.namespaced, "kind": info.kind,
                            "verbs": ["get", "patch", "update"]})
            elif sub == "binding":
                out.append({"name": f"{info.plural}/binding", "singularName": "",
                            "namespaced": True, "kind": "Binding", "verbs": ["create"]})
            elif sub == "token":
                out.append({"name": f"{info.plural}/token", "singularName": "",
                            "namespaced": True, "group": "authentication.k8s.io",
                            "version": "v1", "kind": "TokenRequest", "verbs": ["create"]})
    return out


def _group_doc(api: Api, name: str) -> dict[str, Any] | None:
    versions = api.registry.group_versions(name)
    if not versions:
        return None
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def discovery(api: Api, what: str, segs: list[str], server_address: str) -> dict[str, Any] | None:
    if what == "api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }
    if what == "apis":
        groups = []
        for g in api.registry.groups():
            doc = _group_doc(api, g.name)
            if doc:
                groups.append(doc)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    if what == "group":
        doc = _group_doc(api, segs[1])
        if doc is None:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **doc}
    if what == "resources":
        group, version = ("", "v1") if segs[0] == "api" else (segs[1], segs[2])
        infos = api.registry.resources_in(group, version)
        if not infos:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": _resource_entries(infos),
        }
    return None


# -- request helpers -----------------------------------------------------------------------


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise errors.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise errors.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def decode_body(raw: bytes, mtype: str) -> Any:
    if not raw.strip():
        raise errors.bad_request("the body of the request was empty")
    try:
        if mtype in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"json parse error: {exc}") from exc
    except RecursionError as exc:  # absurdly deep nesting
        raise errors.bad_request("json parse error: nesting too deep") from exc


async def read_object(request: web.Request, cfg: ServerConfig) -> Any:
    mtype = media_type(request)
    if mtype == protobuf.MEDIA_TYPE:
        raw = await read_body(request, cfg.max_body)
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as exc:
            # kube would read it; we only read the kinds kubectl's generators send.
            raise errors.unsupported_media_type(f"{mtype} ({exc})") from exc
    if mtype not in ("", "application/json", "application/yaml", "*/*"):
        raise errors.unsupported_media_type(mtype)
    return decode_body(await read_body(request, cfg.max_body), mtype)


def _query_int(request: web.Request, key: str) -> int | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise errors.bad_request(f"invalid {key} {raw!r}: must be an integer") from exc


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _selectors(
    request: web.Request, info: ResourceInfo
) -> tuple[list[selectors.Requirement], list[selectors.FieldRequirement]]:
    allowed = ("metadata.name", "metadata.namespace", *info.field_labels)
    try:
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fields = selectors.parse_fields(request.query.get("fieldSelector"), allowed)
    except selectors.SelectorError as exc:
        raise errors.bad_request(f"unable to parse requirement: {exc}") from exc
    return labels, fields


def _field_manager(request: web.Request) -> str:
    """The manager of a non-apply write: ``fieldManager``, else the User-Agent's first
    word (kube's managerOrUserAgent)."""
    manager = request.query.get("fieldManager", "")
    if not manager:
        manager = request.headers.get("User-Agent", "").split("/", 1)[0].strip()
    return manager[:128] or "unknown"


def _for_version(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """A CRD object served at a version other than its storage version (no conversion)."""
    if info.crd and info.version != info.storage_version:
        return {**obj, "apiVersion": info.api_version}
    return obj


# -- handlers ------------------------------------------------------------------------------


class Handler:
    def __init__(self, api: Api, cfg: ServerConfig) -> None:
        self.api = api
        self.cfg = cfg

    def authenticated(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        token = token.strip()
        if token == self.cfg.admin_token:
            return True
        claims = self.api.issuer.verify(token)
        return claims is not None and self.api.token_still_bound(claims)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            response = await self._dispatch(request)
        except errors.ApiError as exc:
            response = error_response(exc)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # the server keeps serving whatever one request does
            log.exception("internal error on %s %s", request.method, request.path)
            response = error_response(errors.internal(str(exc)))
        log.debug(
            "%s %s?%s -> %s (%.1f ms)",
            request.method, request.path, request.query_string, response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path == "/version":
            return json_response(SERVER_VERSION)
        if not self.authenticated(request):
            raise errors.unauthorized()
        if path == "/devkube/compact":
            return await self._compact(request)
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            gv = path[len("/openapi/v3/"):].strip("/")
            doc = (openapi.gv_document(self.api.registry, gv) if gv
                   else openapi.root_document(self.api.registry))
            if doc is None:
                raise errors.resource_not_found()
            return json_response(doc)
        parsed = parse_path(path)
        if parsed is None:
            raise errors.resource_not_found()
        if isinstance(parsed, str):
            if request.method != "GET":
                raise errors.method_not_allowed(request.method, "discovery")
            doc = discovery(self.api, parsed, [s for s in path.split("/") if s],
                            request.host or self.cfg.address)
            if doc is None:
                raise errors.resource_not_found()
            return json_response(doc)
        return await self._resource(request, parsed)

    async def _compact(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            raise errors.method_not_allowed(request.method, "compact")
        rv = _query_int(request, "resourceVersion")
        compacted = self.api.compact(rv)
        return json_response({"compacted": compacted, "resourceVersion": self.api.store.rv})

    async def _resource(self, request: web.Request, ri: RequestInfo) -> web.StreamResponse:
        info = self.api.registry.lookup(ri.group, ri.version, ri.plural)
        if info is None:
            raise errors.resource_not_found()
        if ri.namespace is not None and not info.namespaced:
            raise errors.resource_not_found()
        if ri.subresource is not None and ri.subresource not in info.subresources:
            raise errors.resource_not_found()
        ns = ri.namespace
        method = request.method
        dry_run = bool(request.query.getall("dryRun", []))
        if ri.watch_path or (ri.name is None and method == "GET" and _truthy(
                request.query.get("watch"))):
            if method != "GET":
                raise errors.method_not_allowed(method, info.kind)
            if ri.name is not None:
                # /watch/<plural>/<name> is a watch with a metadata.name field selector.
                return await self._watch(request, info, ns, name=ri.name)
            return await self._watch(request, info, ns)
        if ri.name is None:
            if method == "GET":
                return self._list(request, info, ns)
            if method == "POST":
                if info.namespaced and ns is None:
                    raise errors.resource_not_found()
                body = await read_object(request, self.cfg)
                obj = self.api.create(info, ns, body, dry_run=dry_run)
                return json_response(_for_version(info, obj), 201)
            if method == "DELETE":
                options = await self._delete_options(request)
                labels, fields = _selectors(request, info)
                items = self.api.delete_collection(info, ns, labels, fields, options)
                return json_response({
                    "kind": info.list_kind_name, "apiVersion": info.api_version,
                    "metadata": {"resourceVersion": str(self.api.store.rv)},
                    "items": [_for_version(info, o) for o in items],
                })
            raise errors.method_not_allowed(method, info.kind)
        if info.namespaced and ns is None:
            raise errors.resource_not_found()
        name = ri.name
        sub = ri.subresource
        if method == "GET":
            obj = _for_version(info, self.api.get(info, ns, name))
            if tables.wants_table(request.headers.get("Accept", "")):
                return json_response(tables.table(
                    info, [obj], now=time.time(),
                    list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                    include=request.query.get("includeObject", "Metadata")))
            return json_response(obj)
        if method == "POST" and sub == "binding":
            body = await read_object(request, self.cfg)
            return json_response(self.api.bind(ns or "", name, body), 201)
        if method == "POST" and sub == "token":
            body = await read_object(request, self.cfg)
            return json_response(self.api.token(ns or "", name, body), 201)
        if sub not in (None, "status"):
            raise errors.method_not_allowed(method, f"{info.plural}/{sub}")
        if method == "PUT":
            body = await read_object(request, self.cfg)
            obj = self.api.update(info, ns, name, body, subresource=sub, dry_run=dry_run,
                                  manager=_field_manager(request))
            return json_response(_for_version(info, obj))
        if method == "PATCH":
            mtype = media_type(request)
            if mtype not in (PATCH_MERGE, PATCH_JSON, PATCH_STRATEGIC, PATCH_APPLY):
                raise errors.unsupported_patch(
                    mtype, [PATCH_JSON, PATCH_MERGE, PATCH_STRATEGIC, PATCH_APPLY]
                )
            # PatchOptions are checked before the object is looked up, as kube does.
            manager = request.query.get("fieldManager", "")
            if mtype == PATCH_APPLY and not manager:
                raise errors.invalid("meta.k8s.io", "PatchOptions", "", [
                    ("FieldValueRequired", "fieldManager",
                     "Required value: is required for apply patch")])
            if mtype != PATCH_APPLY and "force" in request.query:
                raise errors.invalid("meta.k8s.io", "PatchOptions", "", [
                    ("FieldValueForbidden", "force",
                     "Forbidden: may not be specified for non-apply patch")])
            patch = decode_body(await read_body(request, self.cfg.max_body), mtype)
            if mtype == PATCH_APPLY:
                obj, created = self.api.apply(
                    info, ns, name, patch, manager=manager,
                    force=_truthy(request.query.get("force")), subresource=sub,
                    dry_run=dry_run,
                )
                return json_response(_for_version(info, obj), 201 if created else 200)
            obj = self.api.patch(info, ns, name, mtype, patch, subresource=sub, dry_run=dry_run,
                                 manager=_field_manager(request))
            return json_response(_for_version(info, obj))
        if method == "DELETE" and sub is None:
            options = await self._delete_options(request)
            obj = self.api.delete(info, ns, name, options, dry_run=dry_run)
            return json_response(_for_version(info, obj))
        raise errors.method_not_allowed(method, info.kind)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        raw = await read_body(request, self.cfg.max_body)
        if raw.strip():
            mtype = media_type(request)
            if mtype not in ("", "application/json", "application/yaml"):
                raise errors.unsupported_media_type(mtype)
            body = decode_body(raw, mtype)
            if not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
            options.update(body)
        grace = _query_int(request, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        return options

    def _list(self, request: web.Request, info: ResourceInfo, ns: str | None) -> web.Response:
        labels, fields = _selectors(request, info)
        exact = None
        if request.query.get("resourceVersionMatch") == "Exact":
            exact = _query_int(request, "resourceVersion")
            if exact is None:
                raise errors.bad_request("resourceVersionMatch=Exact needs a resourceVersion")
        res = self.api.list_objects(
            info, ns, labels, fields,
            limit=_query_int(request, "limit"),
            continue_=request.query.get("continue") or None,
            exact_rv=exact,
        )
        meta: dict[str, Any] = {"resourceVersion": str(res.rv)}
        if res.continue_:
            meta["continue"] = res.continue_
            meta["remainingItemCount"] = res.remaining
        items = res.items
        if info.crd and info.version != info.storage_version:
            items = [_for_version(info, o) for o in items]
        if tables.wants_table(request.headers.get("Accept", "")):
            return json_response(tables.table(
                info, items, now=time.time(), list_meta=meta,
                include=request.query.get("includeObject", "Metadata")))
        body = {
            "kind": info.list_kind_name,
            "apiVersion": info.api_version,
            "metadata": meta,
            "items": items,
        }
        return json_response(body)

    async def _watch(
        self, request: web.Request, info: ResourceInfo, ns: str | None, *, name: str | None = None
    ) -> web.StreamResponse:
        labels, fields = _selectors(request, info)
        if name is not None:
            fields = [*fields, selectors.FieldRequirement("metadata.name", True, name)]
        rv_param = request.query.get("resourceVersion", "")
        initial_events = _truthy(request.query.get("sendInitialEvents"))
        bookmarks = _truthy(request.query.get("allowWatchBookmarks"))
        since: int | None = None
        if rv_param not in ("", "0") and not initial_events:
            try:
                since = int(rv_param)
            except ValueError as exc:
                raise errors.bad_request(f"invalid resource version {rv_param!r}") from exc
        timeout = _query_int(request, "timeoutSeconds")
        lifetime = timeout if timeout and timeout > 0 else DEFAULT_WATCH_TIMEOUT
        deadline = time.monotonic() + lifetime
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        try:
            watcher = self.api.watch(info, ns, labels, fields, since)
        except Expired as exc:
            await response.prepare(request)
            err = errors.expired(str(exc)).status()
            await response.write((dumps({"type": "ERROR", "object": err}) + "\n").encode())
            await response.write_eof()
            return response
        store = self.api.store
        rewrite = bool(info.crd and info.version != info.storage_version)
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        include = request.query.get("includeObject", "Metadata")
        first = True
        try:
            await response.prepare(request)
            if initial_events and bookmarks:
                # Initial ADDED events are already queued: mark where they end.
                watcher.queue.put_nowait(("BOOKMARK-INITIAL", _bookmark_event(info, store.rv)))
            next_bookmark = time.monotonic() + self.cfg.bookmark_interval
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(next_bookmark - now, 0))
                wait = min(wait, IDLE_CHECK_INTERVAL)
                try:
                    # Not asyncio.wait_for: on Python 3.11 it can drop an item that
                    # arrives just as the timeout fires, losing a watch event.
                    async with asyncio.timeout(wait):
                        item = await watcher.queue.get()
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    # Only on an empty queue: a bookmark promises every event up to its RV
                    # has been sent.
                    if bookmarks and time.monotonic() >= next_bookmark and watcher.queue.empty():
                        await response.write(_bookmark_line(info, store.rv))
                        next_bookmark = time.monotonic() + self.cfg.bookmark_interval
                    continue
                if item is None:
                    break
                kind, ev = item
                if kind == "BOOKMARK-INITIAL":
                    await response.write(_bookmark_line(info, ev.rv, initial_end=True))
                    continue
                if as_table:
                    # Like kube-apiserver: column definitions in the first event only.
                    obj = tables.table(info, [_for_version(info, ev.obj)], now=time.time(),
                                       include=include, headers=first)
                    first = False
                    await response.write((dumps({"type": kind, "object": obj}) + "\n").encode())
                elif rewrite:
                    line = (dumps({"type": kind, "object": _for_version(info, ev.obj)}) + "\n")
                    await response.write(line.encode())
                else:
                    await response.write(ev.line(kind))
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            store.unwatch(watcher)
        return response


def _bookmark_event(info: ResourceInfo, rv: int) -> StoredEvent:
    return StoredEvent("BOOKMARK", rv, info.key, "", {})


def _bookmark_line(info: ResourceInfo, rv: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}
    return (dumps({"type": "BOOKMARK", "object": obj}) + "\n").encode()


def make_app(api: Api, cfg: ServerConfig) -> web.Application:
    # The body cap is ours (read_body); aiohttp's own limit only backs it up.
    app = web.Application(client_max_size=cfg.max_body + 1024)
    app[API_KEY] = api
    handler = Handler(api, cfg)
    app.router.add_route("*", "/{tail:.*}", handler.dispatch)
    return app


__all__ = ["MAX_BODY_BYTES", "ServerConfig", "make_app", "parse_path", "rfc3339"]
