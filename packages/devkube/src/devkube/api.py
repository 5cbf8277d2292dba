"""What the API does with objects, independent of HTTP: create/update/patch/delete
with kube-apiserver's semantics (generateName, uid, optimistic concurrency, status
subresources, finalizers and deletionTimestamp, graceful pod deletion, namespace
cascades, CRDs serving their kinds), on top of ``store.Store``. It mirrors
k8s.io/apiserver/pkg/registry/generic/registry/store.go (Create/Update/Delete,
BeforeDelete, shouldDeleteDuringUpdate) and the per-kind strategies under
kubernetes/pkg/registry/core (PrepareForCreate/PrepareForUpdate).

Every method is synchronous: a request's read-check-write runs without an ``await``,
so concurrent requests on one event loop serialise naturally (no lost updates).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import secrets as pysecrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devkube import errors, managedfields, patching, resources, validation
from devkube.resources import ResourceInfo
from devkube.selectors import FieldRequirement, Requirement, fields_match, labels_match
from devkube.store import Expired, Obj, Store, Watcher
from devkube.tokens import ISSUER, TokenIssuer

log = logging.getLogger(__name__)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
POD_DEFAULT_GRACE = 30
TOKEN_DEFAULT_SECONDS = 3600
TOKEN_MIN_SECONDS = 600
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

PATCH_MERGE = "application/merge-patch+json"
PATCH_JSON = "application/json-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
# The field manager of writes that name none (kube uses the User-Agent's first word).
UNKNOWN_MANAGER = "unknown"
# _apply_update's managed: compute managedFields from the write (not an apply).
_TRACK: Any = object()


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clone(obj: Any) -> Any:
    """A deep copy (JSON round trip is faster than copy.deepcopy for JSON data)."""
    return json.loads(json.dumps(obj))


@dataclass
class ListResult:
    items: list[Obj]
    rv: int
    continue_: str = ""
    remaining: int | None = None


class Api:
    def __init__(
        self,
        store: Store,
        registry: resources.Registry,
        issuer: TokenIssuer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.issuer = issuer
        self.clock = clock
        # Restore the kinds CRDs serve (objects survive restarts with --data-dir).
        for _, crd in list(store.items(resources.CRDS_KEY)):
            registry.register_crd(crd)
        ns_info = self.info("", "v1", "namespaces")
        for ns in DEFAULT_NAMESPACES:
            if store.get(resources.NAMESPACES_KEY, "", ns) is None:
                self.create(ns_info, None, {"metadata": {"name": ns}})
            else:
                self._ensure_default_service_account(ns)

    def info(self, group: str, version: str, plural: str) -> ResourceInfo:
        found = self.registry.lookup(group, version, plural)
        if found is None:
            raise errors.resource_not_found()
        return found

    # -- reads --------------------------------------------------------------------------

    def get(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        obj = self.store.get(info.key, namespace or "", name)
        if obj is None:
            raise errors.not_found(info.group, info.plural, name)
        return obj

    def list_objects(
        self,
        info: ResourceInfo,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        *,
        limit: int | None = None,
        continue_: str | None = None,
        exact_rv: int | None = None,
    ) -> ListResult:
        """A list at the current resourceVersion, or at ``exact_rv``, or continuing a
        paginated list at its first page's resourceVersion (a consistent snapshot, as
        etcd gives kube-apiserver; 410 Expired once that version is compacted)."""
        rv = self.store.rv
        start: tuple[str, str] | None = None
        snapshot_at: int | None = exact_rv
        source: Iterable[tuple[tuple[str, str], Obj]]
        if continue_:
            try:
                token = json.loads(base64.b64decode(continue_))
                start = (str(token["start"][0]), str(token["start"][1]))
                snapshot_at = int(token["rv"])
            except (ValueError, KeyError, TypeError, IndexError, binascii.Error) as exc:
                raise errors.bad_request(f"continue key is not valid: {exc}") from exc
        if snapshot_at is not None and snapshot_at != rv:
            try:
                source = self.store.snapshot(info.key, namespace, snapshot_at).items()
            except Expired as exc:
                if continue_:
                    raise errors.expired(
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter."
                    ) from exc
                raise errors.expired(f"too old resource version: {snapshot_at} "
                                     f"({self.store.compacted})") from exc
            rv = snapshot_at
        else:
            source = self.store.items(info.key, namespace)
        matched = sorted(
            (key, obj)
            for key, obj in source
            if (start is None or key > start)
            and labels_match(labels, obj)
            and fields_match(fields, obj)
        )
        if limit and limit > 0 and len(matched) > limit:
            page = matched[:limit]
            last = page[-1][0]
            token_s = base64.b64encode(
                json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(last)}).encode()
            ).decode()
            return ListResult([o for _, o in page], rv, token_s, len(matched) - limit)
        return ListResult([o for _, o in matched], rv)

    def watch(
        self,
        info: ResourceInfo,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        since: int | None,
    ) -> Watcher:
        """Raises store.Expired when ``since`` is compacted."""
        match = None
        if labels or fields:

            def match(obj: Obj) -> bool:
                return labels_match(labels, obj) and fields_match(fields, obj)

        return self.store.watch(info.key, namespace, match, since)

    # -- create -------------------------------------------------------------------------

    def _prepare_body(
        self, info: ResourceInfo, namespace: str | None, body: Any, name: str | None = None
    ) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj: Obj = clone(body)
        api_version = obj.get("apiVersion")
        if api_version and api_version not in (info.api_version, info.group_version):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({info.api_version})"
            )
        kind = obj.get("kind")
        if kind and kind != info.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({info.kind})"
            )
        stored_version = (
            f"{info.group}/{info.storage_version}" if info.storage_version else info.api_version
        )
        # kube's key order: kind, apiVersion, metadata, then the rest.
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        obj = {"kind": info.kind, "apiVersion": stored_version, **obj}
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if info.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if name is not None:
            body_name = meta.get("name")
            if body_name and body_name != name:
                raise errors.bad_request(
                    f"the name of the object ({body_name}) does not match the name on the URL "
                    f"({name})"
                )
            meta["name"] = name
        return obj

    def _check_namespace(self, namespace: str) -> None:
        ns = self.store.get(resources.NAMESPACES_KEY, "", namespace)
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being "
                f"terminated",
            )

    def create(
        self,
        info: ResourceInfo,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        managed_fields: list[Obj] | None = None,
    ) -> Obj:
        ns = namespace or ""
        obj = self._prepare_body(info, namespace if info.namespaced else None, body)
        meta = obj["metadata"]
        if managed_fields is not None:
            meta["managedFields"] = managed_fields
        if info.namespaced:
            self._check_namespace(ns)
        name = meta.get("name") or ""
        if not name:
            prefix = meta.get("generateName") or ""
            if not prefix:
                raise errors.invalid(
                    info.group, info.kind, "",
                    [("FieldValueRequired", "metadata.name",
                      "Required value: name or generateName is required")],
                )
            for _ in range(16):
                name = prefix + "".join(pysecrets.choice(_GENERATE_ALPHABET) for _ in range(5))
                if self.store.get(info.key, ns, name) is None:
                    break
            meta["name"] = name
        self._validate_name(info, name, obj)
        if self.store.get(info.key, ns, name) is not None:
            raise errors.already_exists(info.group, info.plural, name)
        now = self.clock()
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(now)
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        meta.pop("selfLink", None)
        if _tracks_generation(info):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if info.crd and info.has_status:
            obj.pop("status", None)
        self._defaults(info, obj, create=True)
        if dry_run:
            meta["resourceVersion"] = ""
            return obj
        meta["resourceVersion"] = str(self.store.next_rv())
        self.store.put(info.key, ns, name, obj)
        if info.key == resources.CRDS_KEY:
            self._crd_changed(obj)
        elif info.key == resources.NAMESPACES_KEY:
            self._ensure_default_service_account(name)
        return obj

    def _ensure_default_service_account(self, namespace: str) -> None:
        """The serviceaccounts controller's job, done inline: every namespace has a
        ``default`` ServiceAccount (pods run as it; TokenRequests name it)."""
        if self.store.get(resources.SERVICEACCOUNTS_KEY, namespace, "default") is None:
            self.create(self.info("", "v1", "serviceaccounts"), namespace,
                        {"metadata": {"name": "default"}})

    def _validate_name(self, info: ResourceInfo, name: str, obj: Obj) -> None:
        problems = validation.name_errors(info.kind, name)
        if problems:
            raise errors.invalid(
                info.group, info.kind, name,
                [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {p}')
                 for p in problems],
            )
        if info.key == resources.CRDS_KEY:
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            want = f"{names.get('plural', '')}.{spec.get('group', '')}"
            if name != want:
                raise errors.invalid(
                    info.group, info.kind, name,
                    [("FieldValueInvalid", "metadata.name",
                      f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')],
                )
            if not spec.get("versions") or not names.get("kind"):
                raise errors.invalid(
                    info.group, info.kind, name,
                    [("FieldValueRequired", "spec.versions",
                      "Required value: must have exactly one version marked as storage version")],
                )

    # -- defaults (the parts of kube's defaulting and PrepareForCreate clients rely on) --

    def _defaults(
        self, info: ResourceInfo, obj: Obj, *, create: bool, old: Obj | None = None
    ) -> None:
        if info.group:
            if info.key == resources.CRDS_KEY:
                self._crd_status(obj, old)
            elif info.group == "apps" and info.crd is None:
                template = (obj.get("spec") or {}).get("template")
                if isinstance(template, dict):
                    # Pod templates get the pod defaults, as kube's defaulting does.
                    _pod_defaults(template, create=False)
                    if create:
                        obj.setdefault("status", {})
            return
        kind = info.kind
        if kind == "Namespace":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            labels = obj["metadata"].setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            if create:
                obj["status"] = {"phase": "Active"}
        elif kind == "Pod":
            _pod_defaults(obj, create=create)
        elif kind == "Secret":
            if not obj.get("type"):
                obj["type"] = "Opaque"
            string_data = obj.pop("stringData", None)
            data = obj.get("data") or {}
            for key, value in data.items():
                try:
                    base64.b64decode(str(value), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise errors.bad_request(
                        f"Secret in version \"v1\" cannot be handled as a Secret: illegal base64 "
                        f"data in data[{key!r}]"
                    ) from exc
            if isinstance(string_data, dict):
                for key, value in string_data.items():
                    data[key] = base64.b64encode(str(value).encode()).decode()
            if data or "data" in obj:
                obj["data"] = data
        elif kind == "Service":
            self._service_defaults(obj, create=create)

    def _service_defaults(self, obj: Obj, *, create: bool) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        if spec["type"] != "ExternalName":
            if create and not spec.get("clusterIP"):
                spec["clusterIP"] = self._allocate_cluster_ip()
            if spec.get("clusterIP") and spec["clusterIP"] != "None":
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if create:
            obj["status"] = {"loadBalancer": {}}

    def _allocate_cluster_ip(self) -> str:
        used = {
            (o.get("spec") or {}).get("clusterIP")
            for _, o in self.store.items(resources.SERVICES_KEY)
        }
        for host in SERVICE_CIDR.hosts():
            ip = str(host)
            if ip.endswith(".0.1") and host == next(SERVICE_CIDR.hosts()):
                continue  # 10.96.0.1 belongs to the kubernetes service on real clusters
            if ip not in used:
                return ip
        raise errors.internal("service cluster IP range is full")

    def _crd_status(self, crd: Obj, old: Obj | None = None) -> None:
        spec = crd.get("spec") or {}
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        now = rfc3339(self.clock())
        storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
        if old is not None and (old.get("status") or {}).get("conditions"):
            # Established once: keep the conditions (and their transition times) so a
            # no-op update stays a no-op.
            crd["status"] = {**old["status"], "acceptedNames": names}
            return
        crd["status"] = {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
                 "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": now,
                 "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted"},
            ],
            "acceptedNames": names,
            "storedVersions": storage or [v["name"] for v in (spec.get("versions") or [])[:1]],
        }

    def _crd_changed(self, crd: Obj) -> None:
        self.registry.register_crd(crd)

    # -- update / patch -----------------------------------------------------------------

    def update(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str = UNKNOWN_MANAGER,
    ) -> Obj:
        ns = namespace or ""
        old = self.get(info, namespace, name)
        new = self._prepare_body(info, namespace if info.namespaced else None, body, name)
        return self._apply_update(info, ns, name, old, new, subresource, dry_run=dry_run,
                                  manager=manager)

    def patch(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str = UNKNOWN_MANAGER,
    ) -> Obj:
        ns = namespace or ""
        old = self.get(info, namespace, name)
        try:
            if patch_type == PATCH_MERGE:
                if not isinstance(patch, dict):
                    raise patching.PatchError("a merge patch must be a JSON object")
                patched = patching.merge_patch(old, patch)
            elif patch_type == PATCH_JSON:
                patched = patching.json_patch(old, patch)
            elif patch_type == PATCH_STRATEGIC:
                if not info.strategic:
                    raise errors.unsupported_patch(
                        patch_type, [PATCH_JSON, PATCH_MERGE]
                    )
                patched = patching.strategic_merge(old, patch, info.kind)
            else:
                accepted = [PATCH_JSON, PATCH_MERGE] + ([PATCH_STRATEGIC] if info.strategic else [])
                raise errors.unsupported_patch(patch_type, accepted)
        except patching.PatchError as exc:
            raise errors.bad_request(str(exc)) from exc
        except patching.PatchConflict as exc:
            raise errors.unprocessable(str(exc)) from exc
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        new = self._prepare_body(info, namespace if info.namespaced else None, patched, name)
        return self._apply_update(info, ns, name, old, new, subresource, dry_run=dry_run,
                                  manager=manager)

    def apply(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Server-side apply of ``body`` (the object as ``manager`` wants it) to the
        object or its ``status``; creates a missing object. Returns (object, created)."""
        ns = namespace or ""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        config_meta: dict[str, Any] = meta or {}
        if config_meta.get("managedFields") is not None:
            raise errors.bad_request("metadata.managedFields must be nil")
        if body.get("apiVersion") != info.api_version:
            raise errors.bad_request(
                f"Incorrect version specified in apply patch. Specified patch version: "
                f"{body.get('apiVersion') or ''}, expected: {info.api_version}"
            )
        if not body.get("kind"):
            raise errors.bad_request(f"Object 'Kind' is missing in '{json.dumps(body)}'")
        # Kind, name and namespace must match the request, as for any write.
        self._prepare_body(info, namespace if info.namespaced else None, body, name)
        old = self.store.get(info.key, ns, name)
        if old is None and subresource is not None:
            raise errors.not_found(info.group, info.plural, name)
        try:
            merged = managedfields.apply(
                old, body, manager=manager, api_version=info.api_version,
                rules=self._merge_rules(info), now=rfc3339(self.clock()), force=force,
                subresource=subresource, has_status=info.has_status,
            )
        except managedfields.ApplyConflict as exc:
            raise errors.apply_conflict(
                str(exc),
                [(c.manager, managedfields.path_string(c.path)) for c in exc.conflicts],
            ) from exc
        except managedfields.FieldError as exc:
            raise errors.unprocessable(str(exc)) from exc
        except patching.PatchError as exc:
            raise errors.bad_request(str(exc)) from exc
        managed = merged["metadata"].pop("managedFields")
        if old is None:
            merged["metadata"]["name"] = name
            return self.create(info, namespace, merged, dry_run=dry_run,
                               managed_fields=managed), True
        for key in ("resourceVersion", "uid"):
            # In an applied config these are preconditions, as in an update.
            if config_meta.get(key):
                merged["metadata"][key] = config_meta[key]
        new = self._prepare_body(info, namespace if info.namespaced else None, merged, name)
        return self._apply_update(info, ns, name, old, new, subresource, dry_run=dry_run,
                                  managed=managed), False

    @staticmethod
    def _merge_rules(info: ResourceInfo) -> dict[str, str]:
        """Which lists merge by key or as sets: the strategic-merge rules of built-in
        kinds; for custom resources only ObjectMeta's (their other lists are atomic)."""
        return patching.strategies_for(info.kind) if info.strategic else (
            patching.meta_strategies())

    def _apply_update(
        self,
        info: ResourceInfo,
        ns: str,
        name: str,
        old: Obj,
        new: Obj,
        subresource: str | None,
        *,
        dry_run: bool,
        manager: str = UNKNOWN_MANAGER,
        managed: Any = _TRACK,
    ) -> Obj:
        """Write ``new`` over ``old``. ``managed`` is the managedFields an apply computed;
        by default the write's own changes are tracked (managedfields.track_update)."""
        meta = new["metadata"]
        old_meta = old["metadata"]
        want_rv = meta.get("resourceVersion")
        if want_rv and want_rv != old_meta["resourceVersion"]:
            raise errors.conflict(info.group, info.plural, name, errors.STALE)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise errors.conflict(
                info.group, info.plural, name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old_meta['uid']}",
            )
        if subresource == "status":
            status = new.get("status")
            new = clone(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        elif subresource is not None:
            raise errors.method_not_allowed("update", f"{info.plural}/{subresource}")
        else:
            if info.has_status:
                if "status" in old:
                    new["status"] = clone(old["status"])
                else:
                    new.pop("status", None)
            if _tracks_generation(info):
                # A spec change bumps generation (controllers compare observedGeneration).
                if _spec_part(new) != _spec_part(old):
                    meta["generation"] = int(old_meta.get("generation") or 1) + 1
                else:
                    meta["generation"] = old_meta.get("generation", 1)
            else:
                meta.pop("generation", None)
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
            if added:
                raise errors.invalid(
                    info.group, info.kind, name,
                    [("FieldValueForbidden", "metadata.finalizers",
                      "Forbidden: no new finalizers can be added if the object is being "
                      "deleted, found new finalizers " + str(sorted(added)))],
                )
        if info.kind == "Namespace" and info.group == "" and subresource is None:
            new.setdefault("spec", old.get("spec", {}))
        if info.key == resources.CRDS_KEY:
            self._validate_name(info, name, new)
        self._defaults(info, new, create=False, old=old)
        if managed is _TRACK:
            managed = managedfields.track_update(
                _requested_managed_fields(meta.get("managedFields"),
                                          old_meta.get("managedFields")),
                old, new, manager=manager, api_version=info.api_version,
                rules=self._merge_rules(info), now=rfc3339(self.clock()),
                subresource=subresource,
            )
        if managed:
            meta["managedFields"] = managed
        else:
            meta.pop("managedFields", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == old or _same_but_times(new, old):
            return old  # a no-op update writes nothing and sends no event, like kube
        if _should_delete_during_update(old_meta, meta):
            if dry_run:
                return new
            return self._remove(info, ns, name, new)
        if dry_run:
            return new
        meta["resourceVersion"] = str(self.store.next_rv())
        self.store.put(info.key, ns, name, new)
        if info.key == resources.CRDS_KEY:
            self._crd_changed(new)
        return new

    # -- delete -------------------------------------------------------------------------

    def delete(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> Obj:
        ns = namespace or ""
        options = options or {}
        old = self.get(info, namespace, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise errors.conflict(
                info.group, info.plural, name,
                f"Precondition failed: UID in precondition: {pre['uid']}, "
                f"UID in object meta: {old['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"][
            "resourceVersion"
        ]:
            raise errors.conflict(
                info.group, info.plural, name,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {old['metadata']['resourceVersion']}",
            )
        if dry_run:
            return old
        if info.key == resources.NAMESPACES_KEY:
            return self._delete_namespace(old)
        grace = 0
        if info.key == resources.PODS_KEY:
            grace = self._pod_grace(old, options)
        meta = old["metadata"]
        if grace > 0:
            # Graceful pod deletion: the pod stays with a deletionTimestamp until its
            # kubelet (edged) deletes it with gracePeriodSeconds=0.
            current = meta.get("deletionGracePeriodSeconds")
            if current is not None and current <= grace:
                return old
            new = clone(old)
            new["metadata"]["deletionTimestamp"] = rfc3339(self.clock() + grace)
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            return self._write(info, ns, name, new)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp") and meta.get("deletionGracePeriodSeconds") == 0:
                return old
            new = clone(old)
            new["metadata"].setdefault("deletionTimestamp", rfc3339(self.clock()))
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._write(info, ns, name, new)
        return self._remove(info, ns, name, clone(old))

    def _pod_grace(self, pod: Obj, options: dict[str, Any]) -> int:
        spec = pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", POD_DEFAULT_GRACE)
        try:
            return max(int(grace), 0)
        except (TypeError, ValueError) as exc:
            raise errors.bad_request("gracePeriodSeconds must be an integer") from exc

    def _write(self, info: ResourceInfo, ns: str, name: str, new: Obj) -> Obj:
        new["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.put(info.key, ns, name, new)
        return new

    def _remove(self, info: ResourceInfo, ns: str, name: str, final: Obj) -> Obj:
        final["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.remove(info.key, ns, name, final)
        if info.key == resources.CRDS_KEY:
            self._crd_removed(final)
        if info.namespaced:
            self._maybe_finish_namespace(ns)
        return final

    def delete_collection(
        self,
        info: ResourceInfo,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        options: dict[str, Any] | None = None,
    ) -> list[Obj]:
        out = []
        for obj in self.list_objects(info, namespace, labels, fields).items:
            meta = obj["metadata"]
            try:
                out.append(self.delete(info, meta.get("namespace"), meta["name"], options))
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        return out

    def _delete_namespace(self, ns_obj: Obj) -> Obj:
        name = ns_obj["metadata"]["name"]
        if not ns_obj["metadata"].get("deletionTimestamp"):
            new = clone(ns_obj)
            new["metadata"]["deletionTimestamp"] = rfc3339(self.clock())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            ns_obj = self._write(self.info("", "v1", "namespaces"), "", name, new)
        # The namespace controller's job, done inline: delete everything in it.
        for key in self.registry.namespaced_keys():
            info = self.registry.by_key(key)
            if info is None:
                continue
            for (_, obj_name), _obj in list(self.store.items(key, name)):
                try:
                    self.delete(info, name, obj_name, {})
                except errors.ApiError as exc:  # pragma: no cover - raced with another delete
                    log.debug("namespace %s cascade: %s", name, exc.message)
        self._maybe_finish_namespace(name)
        current = self.store.get(resources.NAMESPACES_KEY, "", name)
        return current if current is not None else ns_obj

    def _maybe_finish_namespace(self, ns: str) -> None:
        ns_obj = self.store.get(resources.NAMESPACES_KEY, "", ns)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        for key in self.registry.namespaced_keys():
            if self.store.count(key, ns):
                return
        final = clone(ns_obj)
        final.setdefault("spec", {})["finalizers"] = []
        final["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.remove(resources.NAMESPACES_KEY, "", ns, final)

    def _crd_removed(self, crd: Obj) -> None:
        infos = self.registry.unregister_crd(crd["metadata"]["name"])
        if not infos:
            return
        key = infos[0].key
        for (ns, name), obj in list(self.store.items(key)):
            final = clone(obj)
            final["metadata"]["resourceVersion"] = str(self.store.next_rv())
            self.store.remove(key, ns, name, final)
        self.store.close_watchers(key)

    # -- subresources -------------------------------------------------------------------

    def bind(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        info = self.info("", "v1", "pods")
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        target = body.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid(
                "", "Binding", name,
                [("FieldValueRequired", "target.name", "Required value")],
            )
        pod = self.get(info, namespace, name)
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise errors.conflict(
                "", "pods", name, f'pod {name} is already assigned to node "{current}"'
            )
        new = clone(pod)
        new.setdefault("spec", {})["nodeName"] = node
        annotations = (body.get("metadata") or {}).get("annotations")
        if annotations:
            new["metadata"].setdefault("annotations", {}).update(annotations)
        conds = new.setdefault("status", {}).setdefault("conditions", [])
        conds[:] = [c for c in conds if c.get("type") != "PodScheduled"]
        conds.append(
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
             "lastTransitionTime": rfc3339(self.clock())}
        )
        self._write(info, namespace, name, new)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}

    def token(self, namespace: str, name: str, body: Any) -> Obj:
        info = self.info("", "v1", "serviceaccounts")
        sa = self.get(info, namespace, name)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        spec = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds") or TOKEN_DEFAULT_SECONDS
        if not isinstance(seconds, int) or seconds < TOKEN_MIN_SECONDS:
            raise errors.invalid(
                "authentication.k8s.io", "TokenRequest", name,
                [("FieldValueInvalid", "spec.expirationSeconds",
                  f"Invalid value: {seconds}: may not specify a duration less than 10 minutes")],
            )
        audiences = spec.get("audiences") or [ISSUER]
        bound = spec.get("boundObjectRef")
        if bound:
            kind = bound.get("kind")
            plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}.get(str(kind))
            if plural is None:
                raise errors.invalid(
                    "authentication.k8s.io", "TokenRequest", name,
                    [("FieldValueNotSupported", "spec.boundObjectRef.kind",
                      f'Unsupported value: "{kind}"')],
                )
            target_ns = "" if plural == "nodes" else namespace
            target = self.store.get(f"/{plural}", target_ns, str(bound.get("name", "")))
            if target is None:
                raise errors.not_found("", plural, str(bound.get("name", "")))
            want_uid = bound.get("uid")
            if want_uid and want_uid != target["metadata"]["uid"]:
                raise errors.conflict(
                    "", plural, str(bound.get("name")),
                    f"the UID in the bound object reference ({want_uid}) does not match the UID "
                    f"in record. The object might have been deleted and then recreated",
                )
            bound = {**bound, "uid": target["metadata"]["uid"]}
        now = self.clock()
        token, exp = self.issuer.issue(
            namespace=namespace,
            sa_name=name,
            sa_uid=sa["metadata"]["uid"],
            audiences=list(audiences),
            expiration_seconds=seconds,
            bound=bound,
            now=now,
        )
        spec["audiences"] = list(audiences)
        spec["expirationSeconds"] = seconds
        spec.setdefault("boundObjectRef", None)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "creationTimestamp": rfc3339(now)},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": rfc3339(exp)},
        }

    def token_still_bound(self, claims: dict[str, Any]) -> bool:
        """kube-apiserver's bound-token check: the service account, and the pod or secret
        the token is bound to, still exist with the same uid."""
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            return False
        ns = str(private.get("namespace", ""))
        for kind, key in (("serviceaccount", resources.SERVICEACCOUNTS_KEY),
                          ("pod", resources.PODS_KEY), ("secret", resources.SECRETS_KEY),
                          ("node", resources.NODES_KEY)):
            ref = private.get(kind)
            if ref is None:
                if kind == "serviceaccount":
                    return False
                continue
            if not isinstance(ref, dict):
                return False
            obj = self.store.get(key, "" if kind == "node" else ns, str(ref.get("name", "")))
            if obj is None or obj["metadata"]["uid"] != ref.get("uid"):
                return False
        return True

    # -- admin --------------------------------------------------------------------------

    def compact(self, rv: int | None = None) -> int:
        return self.store.compact(rv)


def _should_delete_during_update(old_meta: dict[str, Any], new_meta: dict[str, Any]) -> bool:
    """kube's Store.shouldDeleteDuringUpdate: the update removed the last finalizer of an
    object being deleted whose grace period is over (graceful pods stay until kubelet)."""
    return (
        not new_meta.get("finalizers")
        and bool(old_meta.get("finalizers"))
        and bool(old_meta.get("deletionTimestamp"))
        and not old_meta.get("deletionGracePeriodSeconds")
    )


def _requested_managed_fields(requested: Any, current: Any) -> Any:
    """kube's rule for managedFields in a write: absent or empty keeps the current
    ones (clients unaware of the field never wipe it), ``[{}]`` clears them, anything
    else replaces them."""
    if not requested:
        return current
    if requested == [{}]:
        return None
    return requested


def _same_but_times(new: Obj, old: Obj) -> bool:
    """Whether ``new`` differs from ``old`` only in managedFields timestamps (an apply
    whose result the defaults turned back into the stored object)."""
    new_mf = new["metadata"].get("managedFields")
    old_mf = old["metadata"].get("managedFields")
    if not new_mf or not old_mf or len(new_mf) != len(old_mf):
        return False

    def untimed(obj: Obj) -> Obj:
        meta = dict(obj["metadata"])
        meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"}
                                 for e in meta["managedFields"]]
        return {**obj, "metadata": meta}

    return untimed(new) == untimed(old)


def _tracks_generation(info: ResourceInfo) -> bool:
    """kube sets metadata.generation on custom resources, CRDs and workloads (apps/v1),
    not on core/v1 kinds."""
    return info.crd is not None or info.key == resources.CRDS_KEY or info.group == "apps"


def _spec_part(obj: Obj) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _pod_defaults(pod: Obj, *, create: bool) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", POD_DEFAULT_GRACE)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    qos_classes = []
    for field in ("initContainers", "containers"):
        for c in spec.get(field) or []:
            if not isinstance(c, dict):
                continue
            image = str(c.get("image", ""))
            tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
            latest = image.endswith(":latest")
            c.setdefault("imagePullPolicy", "Always" if tagless or latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
            qos_classes.append(_container_qos(c.get("resources") or {}))
    if create:
        qos = "BestEffort"
        if qos_classes and all(q == "Guaranteed" for q in qos_classes):
            qos = "Guaranteed"
        elif any(q != "BestEffort" for q in qos_classes):
            qos = "Burstable"
        pod["status"] = {"phase": "Pending", "qosClass": qos}


def _container_qos(res: dict[str, Any]) -> str:
    requests = res.get("requests") or {}
    limits = res.get("limits") or {}
    if not requests and not limits:
        return "BestEffort"
    if all(limits.get(r) is not None and requests.get(r, limits.get(r)) == limits.get(r)
           for r in ("cpu", "memory")):
        return "Guaranteed"
    return "Burstable"


__all__ = ["Api", "Expired", "ListResult", "rfc3339"]
