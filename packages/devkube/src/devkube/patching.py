"""PATCH documents (pure): JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
Kubernetes strategic merge patch for the built-in kinds.

Strategic merge follows k8s.io/apimachinery/pkg/util/strategicpatch/patch.go:
lists with a ``patchMergeKey`` merge element-wise by that key (containers by name,
conditions by type, ...), primitive lists with ``patchStrategy: merge`` (finalizers)
are unions, every other list is replaced. Directives supported: ``$patch: replace|delete``
(on maps and list elements, and ``[{"$patch": "replace"}, ...]`` on lists),
``$deleteFromPrimitiveList/<field>``, ``$setElementOrder/<field>`` and ``$retainKeys``.
The merge keys come from the Go struct tags of core/v1 (``STRATEGIES`` below).
"""

from __future__ import annotations

import copy
from typing import Any

from devkube.errors import DevKubeError


class PatchError(DevKubeError, ValueError):
    """The patch document is malformed (400 BadRequest)."""


class PatchConflict(DevKubeError, ValueError):
    """The patch is well formed but cannot apply (422 Invalid), e.g. a failed ``test``."""


# -- JSON merge patch -------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- JSON patch -------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"invalid JSON pointer {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchConflict(f"invalid array index {token!r}")
    idx = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if idx > limit:
        raise PatchConflict(f"array index {idx} out of bounds")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchConflict(f"path /{'/'.join(tokens)} does not exist")
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, allow_end=False)]
        else:
            raise PatchConflict(f"path /{'/'.join(tokens)} does not exist")
    return cur


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    tok = tokens[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchConflict(f"path /{'/'.join(tokens)} does not exist")
        return parent[tok]
    if isinstance(parent, list):
        return parent[_index(parent, tok, allow_end=False)]
    raise PatchConflict(f"path /{'/'.join(tokens)} does not exist")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    tok = tokens[-1]
    if isinstance(parent, dict):
        parent[tok] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tok, allow_end=True), value)
    else:
        raise PatchConflict(f"cannot add at /{'/'.join(tokens)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchConflict("cannot remove the whole document")
    parent = _parent(doc, tokens)
    tok = tokens[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchConflict(f"path /{'/'.join(tokens)} does not exist")
        return parent.pop(tok)
    if isinstance(parent, list):
        return parent.pop(_index(parent, tok, allow_end=False))
    raise PatchConflict(f"path /{'/'.join(tokens)} does not exist")


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch to a copy of ``target``."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"invalid JSON patch operation {op!r}")
        kind = op["op"]
        tokens = _pointer(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {kind} needs a value")
        if kind == "add":
            doc = _add(doc, tokens, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, tokens)
        elif kind == "replace":
            _get(doc, tokens)  # must exist
            if not tokens:
                doc = copy.deepcopy(op["value"])
            else:
                parent = _parent(doc, tokens)
                if isinstance(parent, list):
                    parent[_index(parent, tokens[-1], allow_end=False)] = copy.deepcopy(op["value"])
                else:
                    parent[tokens[-1]] = copy.deepcopy(op["value"])
        elif kind == "move":
            src = _pointer(op.get("from"))
            value = _remove(doc, src)
            doc = _add(doc, tokens, value)
        elif kind == "copy":
            src = _pointer(op.get("from"))
            doc = _add(doc, tokens, copy.deepcopy(_get(doc, src)))
        elif kind == "test":
            if _get(doc, tokens) != op["value"]:
                raise PatchConflict(f"testing value /{'/'.join(tokens)} failed")
        else:
            raise PatchError(f"unexpected kind of operation {kind!r}")
    return doc


# -- strategic merge patch --------------------------------------------------------------

PRIMITIVE_MERGE = ""  # marker: primitive list merged as a set


def _container_rules(prefix: str) -> dict[str, str]:
    return {
        prefix: "name",
        f"{prefix}.ports": "containerPort",
        f"{prefix}.env": "name",
        f"{prefix}.volumeMounts": "mountPath",
        f"{prefix}.volumeDevices": "devicePath",
        f"{prefix}.resizePolicy": "resourceName",
    }


_META = {"metadata.finalizers": PRIMITIVE_MERGE, "metadata.ownerReferences": "uid"}

_POD_SPEC = {
    **_container_rules("containers"),
    **_container_rules("initContainers"),
    **_container_rules("ephemeralContainers"),
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "topologySpreadConstraints": "topologyKey",
}

# Paths are dotted field names from the object root; list elements add no segment.
STRATEGIES: dict[str, dict[str, str]] = {
    "Pod": {
        **_META,
        **{f"spec.{k}": v for k, v in _POD_SPEC.items()},
        "status.conditions": "type",
        "status.podIPs": "ip",
        "status.hostIPs": "ip",
    },
    "Node": {
        **_META,
        "spec.podCIDRs": PRIMITIVE_MERGE,
        "status.conditions": "type",
        "status.addresses": "type",
    },
    "Namespace": {**_META, "status.conditions": "type"},
    "Service": {**_META, "spec.ports": "port", "status.conditions": "type"},
    "ServiceAccount": {**_META, "secrets": "name", "imagePullSecrets": "name"},
    **{
        kind: {
            **_META,
            **{f"spec.template.spec.{k}": v for k, v in _POD_SPEC.items()},
            "status.conditions": "type",
        }
        for kind in ("Deployment", "DaemonSet", "ReplicaSet", "StatefulSet")
    },
}


def strategies_for(kind: str) -> dict[str, str]:
    return STRATEGIES.get(kind, _META)


def strategic_merge(target: Any, patch: Any, kind: str) -> Any:
    """Apply a strategic merge patch for ``kind`` to a copy of ``target``."""
    return strategic_merge_rules(target, patch, strategies_for(kind))


def strategic_merge_rules(target: Any, patch: Any, rules: dict[str, str]) -> Any:
    """Strategic merge with explicit list rules (server-side apply merges custom
    resources with ObjectMeta's rules only)."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(target if isinstance(target, dict) else {}, patch, "", rules)


def meta_strategies() -> dict[str, str]:
    """The list rules every kind shares (ObjectMeta's finalizers and ownerReferences)."""
    return dict(_META)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _merge_map(
    orig: dict[str, Any], patch: dict[str, Any], path: str, rules: dict[str, str]
) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive is not None:
        raise PatchError(f"unknown patch type: {directive!r} in map")
    result = dict(orig)
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    for key, value in patch.items():
        if key in ("$retainKeys",) or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            cur = result.get(field)
            if isinstance(cur, list):
                result[field] = [v for v in cur if v not in value]
            continue
        if key.startswith("$"):
            raise PatchError(f"unknown directive {key!r}")
        sub = _join(path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            merged = _merge_map(current if isinstance(current, dict) else {}, value, sub, rules)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, sub, rules)
        else:
            result[key] = value
    for key, order in patch.items():
        if key.startswith("$setElementOrder/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(order, list):
                result[field] = _reorder(result[field], order, rules.get(_join(path, field)))
    return result


def _merge_list(orig: Any, patch: list[Any], path: str, rules: dict[str, str]) -> list[Any]:
    orig_list = list(orig) if isinstance(orig, list) else []
    # [{"$patch": "replace"}, ...] replaces the whole list.
    if any(isinstance(e, dict) and e.get("$patch") == "replace" and len(e) == 1 for e in patch):
        return [copy.deepcopy(e) for e in patch if not (isinstance(e, dict) and "$patch" in e)]
    strategy = rules.get(path)
    if strategy is None:
        return copy.deepcopy(patch)
    if strategy == PRIMITIVE_MERGE:
        out = list(orig_list)
        for v in patch:
            if isinstance(v, dict | list):
                raise PatchError(f"{path}: expected primitive list elements")
            if v not in out:
                out.append(v)
        return out
    key = strategy
    out = [copy.deepcopy(e) if not isinstance(e, dict) else e for e in orig_list]
    for elem in patch:
        if not isinstance(elem, dict):
            raise PatchError(f"{path}: list elements must be objects")
        if key not in elem:
            raise PatchError(f"map: {elem} does not contain declared merge key: {key}")
        idx = next(
            (i for i, e in enumerate(out) if isinstance(e, dict) and e.get(key) == elem[key]), None
        )
        if elem.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            clean = _merge_map({}, elem, path, rules)
            if clean is not None:
                out.append(clean)
        else:
            merged = _merge_map(out[idx], elem, path, rules)
            if merged is None:
                out.pop(idx)
            else:
                out[idx] = merged
    return out


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(e: Any) -> Any:
        return e.get(key) if key and isinstance(e, dict) else e

    pos = {ident(o) if isinstance(o, dict) else o: i for i, o in enumerate(order)}
    ranked = sorted(
        enumerate(items), key=lambda p: (pos.get(ident(p[1]), len(pos)), p[0])
    )
    return [e for _, e in ranked]
