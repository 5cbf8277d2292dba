"""A minimal OpenAPI v3 discovery: just enough for kubectl to see that the server
supports the ``fieldValidation`` query parameter (k8s.io/cli-runtime
resource/query_param_verifier_v3.go), so ``kubectl create/apply -f`` validate on the
server instead of downloading schemas. There are no schemas: unknown fields are kept,
and ``kubectl explain`` has nothing to show. /openapi/v2 answers 404."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devkube.resources import Registry, ResourceInfo


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _gvs(registry: Registry) -> dict[str, list[ResourceInfo]]:
    out: dict[str, list[ResourceInfo]] = {}
    for info in registry.all():
        out.setdefault(_gv_path(info.group, info.version), []).append(info)
    return out


def gv_document(registry: Registry, gv_path: str) -> dict[str, Any] | None:
    infos = _gvs(registry).get(gv_path)
    if not infos:
        return None
    paths: dict[str, Any] = {}
    for info in sorted(infos, key=lambda i: i.plural):
        base = f"/{gv_path}"
        if info.namespaced:
            base += "/namespaces/{namespace}"
        gvk = {"group": info.group, "version": info.version, "kind": info.kind}
        params = [
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
             "uniqueItems": True},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"},
             "uniqueItems": True},
        ]
        paths[f"{base}/{info.plural}"] = {
            "post": {"operationId": f"create{info.kind}", "parameters": params,
                     "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk,
                     "responses": {"201": {"description": "Created"}}},
        }
        paths[f"{base}/{info.plural}/{{name}}"] = {
            "put": {"operationId": f"replace{info.kind}", "parameters": params,
                    "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk,
                    "responses": {"200": {"description": "OK"}}},
            "patch": {"operationId": f"patch{info.kind}", "parameters": params,
                      "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                      "responses": {"200": {"description": "OK"}}},
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (devkube)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def root_document(registry: Registry) -> dict[str, Any]:
    paths = {}
    for gv in sorted(_gvs(registry)):
        doc = gv_document(registry, gv)
        digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest.upper()}"}
    return {"paths": paths}
