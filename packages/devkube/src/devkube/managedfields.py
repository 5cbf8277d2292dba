"""Server-side apply and field ownership (pure): ``metadata.managedFields`` the way
kube-apiserver keeps it (k8s.io/apimachinery/pkg/util/managedfields and
sigs.k8s.io/structured-merge-diff), approximated without OpenAPI schemas.

A *field path* is a tuple of elements: ``("f", name)`` for a map key or struct
field, ``("k", '{"name":"c"}')`` for the element of a list merged by key,
``("v", '"x"')`` for a value of a list merged as a set, ``("i", "3")`` for a list
index (only read, never produced). Which lists are keyed or sets comes from the
strategic-merge rules of ``patching`` (built-in kinds) or only ObjectMeta's
(custom resources); every other list is atomic, owned and replaced whole, which is
what structured-merge-diff does for lists without ``x-kubernetes-list-type``.

An owner's set holds the leaves it set (scalars, atomic lists, empty maps) and the
keyed list elements themselves, like a ``fieldsV1`` that kube-apiserver writes for
an Apply: ``{"f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image":
{}, "f:name": {}}}}}``.

Only Apply operations start ownership tracking. An object nobody has applied has no
managedFields and its updates are not tracked (kube's SkipNonAppliedManager); the
first apply gives its existing fields to the ``before-first-apply`` manager, and from
then on every update moves the fields it changes to its own ``Update`` entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from devkube.errors import DevKubeError
from devkube.patching import PRIMITIVE_MERGE, strategic_merge_rules

Elem = tuple[str, str]
FieldPath = tuple[Elem, ...]
Obj = dict[str, Any]

APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"

# ObjectMeta fields nobody owns (kube's stripMeta), plus the deletion fields only the
# server sets.
UNOWNED_META = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "selfLink", "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds",
})


class _Item:
    """The value of a keyed list element's own path: present, nothing to compare."""

    def __repr__(self) -> str:
        return "ITEM"


ITEM: Any = _Item()
_MISSING: Any = object()


class FieldError(DevKubeError, ValueError):
    """An applied object that cannot be mapped to fields (a keyed element without its key)."""


@dataclass(frozen=True)
class Conflict:
    manager: str  # printed like kube: '"name"' or '"name" using v1'
    path: FieldPath


class ApplyConflict(DevKubeError):
    """Another manager owns fields the applied config sets to other values."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(conflict_message(conflicts))


# -- paths -----------------------------------------------------------------------------


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _join(rule_path: str, key: str) -> str:
    return f"{rule_path}.{key}" if rule_path else key


def ownable(obj: Mapping[str, Any], *, status: bool | None = None) -> Obj:
    """The part of ``obj`` fields can be owned in: without apiVersion, kind and the
    server-set metadata. ``status`` False drops ``status`` (the main resource of a kind
    with a status subresource), True keeps only it (the status subresource)."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in UNOWNED_META}
        if kept:
            out["metadata"] = kept
        else:
            out.pop("metadata")
    if status is True:
        return {"status": out["status"]} if "status" in out else {}
    if status is False:
        out.pop("status", None)
    return out


def leaves(obj: Mapping[str, Any], rules: Mapping[str, str]) -> dict[FieldPath, Any]:
    """Every ownable path of ``obj`` with its value (``ITEM`` for keyed list elements).
    Nulls are skipped: an applied null sets nothing."""
    out: dict[FieldPath, Any] = {}
    for key, value in obj.items():
        if value is not None:
            _walk(value, (("f", key),), key, rules, out)
    return out


def _walk(
    value: Any, path: FieldPath, rule_path: str, rules: Mapping[str, str],
    out: dict[FieldPath, Any],
) -> None:
    if isinstance(value, dict):
        if not value:
            out[path] = {}
        for key, child in value.items():
            if child is not None:
                _walk(child, (*path, ("f", key)), _join(rule_path, key), rules, out)
        return
    strategy = rules.get(rule_path) if isinstance(value, list) else None
    if not isinstance(value, list) or strategy is None or not value:
        out[path] = value  # a scalar, an atomic list or an empty list: one leaf
        return
    if strategy == PRIMITIVE_MERGE:
        for item in value:
            out[(*path, ("v", _canon(item)))] = item
        return
    for index, item in enumerate(value):
        if not isinstance(item, dict) or item.get(strategy) is None:
            raise FieldError(
                f"{path_string(path)}: element {index}: associative list with keys has an "
                f'element that omits key field "{strategy}"'
            )
        item_path = (*path, ("k", _canon({strategy: item[strategy]})))
        out[item_path] = ITEM
        for key, child in item.items():
            if child is not None:
                _walk(child, (*item_path, ("f", key)), _join(rule_path, key), rules, out)


def path_string(path: FieldPath) -> str:
    """structured-merge-diff's Path.String(): ``.spec.containers[name="c"].image``."""
    parts = []
    for kind, value in path:
        if kind == "f":
            parts.append(f".{value}")
        elif kind == "k":
            fields = json.loads(value)
            parts.append("[" + ",".join(f"{k}={_canon(v)}" for k, v in sorted(fields.items()))
                         + "]")
        elif kind == "v":
            parts.append(f"[={value}]")
        else:
            parts.append(f"[{value}]")
    return "".join(parts)


# -- fieldsV1 --------------------------------------------------------------------------


def _elem_key(elem: Elem) -> str:
    return f"{elem[0]}:{elem[1]}"


def encode(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """A FieldsV1 tree: nested maps of ``f:``/``k:``/``v:`` keys, ``{}`` at owned
    leaves and ``".": {}`` in owned nodes that also have owned children."""
    members = set(paths)
    root: dict[str, Any] = {}
    for path in members:
        node = root
        for elem in path:
            node = node.setdefault(_elem_key(elem), {})
    for path in members:
        node = root
        for elem in path:
            node = node[_elem_key(elem)]
        if node and "." not in node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    # "." first, then the rest in byte order, as kube serialises its sets.
    return {k: _sorted(node[k]) for k in sorted(node, key=lambda k: (k != ".", k))}


def decode(tree: Any, prefix: FieldPath = ()) -> set[FieldPath]:
    """The owned paths of a FieldsV1 tree (malformed parts are ignored)."""
    out: set[FieldPath] = set()
    if not isinstance(tree, dict):
        return out
    for key, child in tree.items():
        if key == ".":
            if prefix:
                out.add(prefix)
            continue
        kind, sep, raw = str(key).partition(":")
        if not sep or kind not in ("f", "k", "v", "i"):
            continue
        if kind in ("k", "v"):
            try:
                raw = _canon(json.loads(raw))
            except ValueError:
                continue
        path = (*prefix, (kind, raw))
        if isinstance(child, dict) and child:
            out |= decode(child, path)
        else:
            out.add(path)
    return out


# -- entries ---------------------------------------------------------------------------


def _entry_id(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("manager", "")), str(entry.get("operation", "")),
            str(entry.get("subresource", "") or ""))


def printed_manager(entry: Mapping[str, Any]) -> str:
    """How kube names a manager in a conflict (managedfields/internal/conflict.go)."""
    out = json.dumps(str(entry.get("manager", "")))
    if entry.get("subresource"):
        out += f" with subresource {json.dumps(entry['subresource'])}"
    if entry.get("operation") == UPDATE:
        out += f" using {entry.get('apiVersion', '')}"
    return out


def conflict_message(conflicts: list[Conflict]) -> str:
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {c.manager}: {path_string(c.path)}"
    by_manager: dict[str, list[FieldPath]] = {}
    for c in conflicts:
        by_manager.setdefault(c.manager, []).append(c.path)
    lines = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {path_string(p)}" for p in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def _entry(
    manager: str, operation: str, api_version: str, now: str, paths: set[FieldPath],
    subresource: str | None,
) -> Obj:
    entry: Obj = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": encode(paths),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _entries(value: Any) -> list[Obj]:
    return [e for e in value if isinstance(e, dict) and e.get("manager")] if isinstance(
        value, list) else []


# -- removing fields -------------------------------------------------------------------


def _find(container: Any, elem: Elem) -> tuple[Any, Any]:
    """(the child at ``elem``, a handle to delete it), or (_MISSING, None)."""
    kind, raw = elem
    if kind == "f":
        if isinstance(container, dict) and raw in container:
            return container[raw], raw
    elif isinstance(container, list):
        if kind == "k":
            want = json.loads(raw)
            for i, item in enumerate(container):
                if isinstance(item, dict) and all(item.get(k) == v for k, v in want.items()):
                    return item, i
        elif kind == "v":
            want = json.loads(raw)
            for i, item in enumerate(container):
                if item == want:
                    return item, i
        elif kind == "i" and raw.isdigit() and int(raw) < len(container):
            return container[int(raw)], int(raw)
    return _MISSING, None


def _remove(obj: Obj, path: FieldPath, keep: set[FieldPath]) -> None:
    """Remove ``path`` from ``obj``; maps and lists emptied by that go too, unless
    someone owns them."""
    chain: list[tuple[Any, Any]] = []
    node: Any = obj
    for elem in path:
        child, handle = _find(node, elem)
        if child is _MISSING:
            return
        chain.append((node, handle))
        node = child
    for depth in range(len(path), 0, -1):
        parent, handle = chain[depth - 1]
        del parent[handle]
        parent_path = path[: depth - 1]
        if parent or not parent_path or parent_path in keep:
            return


# -- apply and update ------------------------------------------------------------------


def apply(
    live: Obj | None,
    config: Obj,
    *,
    manager: str,
    api_version: str,
    rules: Mapping[str, str],
    now: str,
    force: bool = False,
    subresource: str | None = None,
    has_status: bool = False,
) -> Obj:
    """Merge the applied ``config`` into ``live`` (None: a new object) for ``manager``
    and return the result with its new ``metadata.managedFields``.

    - Fields ``config`` sets are merged in: maps key by key, keyed lists element by
      element, sets as unions, other lists replaced (strategic merge with ``rules``).
    - Fields the manager applied last time and omits now are removed, unless another
      manager owns them too.
    - A field another manager owns and ``config`` sets to a different value is a
      conflict: ``ApplyConflict``, or with ``force`` the field changes hands.

    The result carries live's name, uid and resourceVersion (the caller checks
    preconditions and writes it). Raises ``FieldError`` for configs that do not map to
    fields, and ``patching.PatchError`` for directives (``$patch``) in them.
    """
    status_part = True if subresource == "status" else (False if has_status else None)
    part = ownable(config, status=status_part)
    applied = leaves(part, rules)
    applied_set = set(applied)
    entries = [dict(e) for e in _entries((live or {}).get("metadata", {}).get("managedFields"))]
    if live is not None and not entries:
        # Nobody tracked this object's fields yet: they all belong to its past writers.
        entries = [_entry(BEFORE_FIRST_APPLY, UPDATE, api_version, now,
                          set(leaves(ownable(live), rules)), None)]
    me = (manager, APPLY, subresource or "")
    mine = next((e for e in entries if _entry_id(e) == me), None)
    previous = decode(mine["fieldsV1"]) if mine is not None else set()
    current = leaves(ownable(live), rules) if live is not None else {}
    owned: dict[int, set[FieldPath]] = {}
    conflicts: list[Conflict] = []
    taken: dict[int, set[FieldPath]] = {}
    for i, entry in enumerate(entries):
        if _entry_id(entry) == me:
            continue
        paths = owned[i] = decode(entry.get("fieldsV1"))
        for path in sorted(applied_set & paths):
            value = applied[path]
            if value is not ITEM and current.get(path, _MISSING) != value:
                conflicts.append(Conflict(printed_manager(entry), path))
                taken.setdefault(i, set()).add(path)
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for i, paths in taken.items():
        owned[i] = owned[i] - paths
    others: set[FieldPath] = set()
    for paths in owned.values():
        others |= paths

    base: Obj = json.loads(json.dumps(live)) if live is not None else {}
    base_meta = base.get("metadata")
    if isinstance(base_meta, dict):
        base_meta.pop("managedFields", None)
    merged: Obj = strategic_merge_rules(base, part, dict(rules))
    for path in sorted(previous - applied_set - others, key=len, reverse=True):
        _remove(merged, path, applied_set | others)

    unchanged = live is not None and ownable(merged) == ownable(live)
    out: list[Obj] = []
    for i, entry in enumerate(entries):
        if _entry_id(entry) == me:
            continue
        if i in taken:
            if not owned[i]:
                continue  # forced out of its last field
            entry = {**entry, "fieldsV1": encode(owned[i])}
        out.append(entry)
    new_entry = _entry(manager, APPLY, api_version, now, applied_set, subresource)
    if mine is not None and unchanged and mine.get("time"):
        # Like kube, an apply that changes nothing keeps the entry's time (so a repeated
        # apply is a no-op: no write, no new resourceVersion, no watch event).
        new_entry["time"] = mine["time"]
    position = next((i for i, e in enumerate(entries) if _entry_id(e) == me), None)
    if position is None:
        out.append(new_entry)
    else:
        out.insert(min(position, len(out)), new_entry)
    merged.setdefault("metadata", {})["managedFields"] = out
    return merged


def track_update(
    managed: Any,
    old: Obj,
    new: Obj,
    *,
    manager: str,
    api_version: str,
    rules: Mapping[str, str],
    now: str,
    subresource: str | None = None,
) -> list[Obj] | None:
    """The managedFields after a non-apply write from ``old`` to ``new``: the fields it
    added or changed move to ``manager``'s Update entry; it stops owning the fields it
    removed. None when nothing is tracked (no managedFields yet)."""
    entries = _entries(managed)
    if not entries:
        return None
    before = leaves(ownable(old), rules)
    after = leaves(ownable(new), rules)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    removed = set(before) - set(after)
    if not changed and not removed:
        return entries
    me = (manager, UPDATE, subresource or "")
    out: list[Obj] = []
    position: int | None = None
    mine: set[FieldPath] = set()
    for entry in entries:
        if _entry_id(entry) == me:
            position = len(out)
            mine = decode(entry.get("fieldsV1"))
            continue
        paths = decode(entry.get("fieldsV1"))
        if paths & changed:
            paths -= changed
            if not paths:
                continue
            entry = {**entry, "fieldsV1": encode(paths)}
        out.append(entry)
    mine = (mine | changed) - removed
    if mine:
        entry = _entry(manager, UPDATE, api_version, now, mine, subresource)
        out.insert(len(out) if position is None else position, entry)
    return out


__all__ = [
    "APPLY",
    "BEFORE_FIRST_APPLY",
    "ITEM",
    "UPDATE",
    "ApplyConflict",
    "Conflict",
    "FieldError",
    "apply",
    "conflict_message",
    "decode",
    "encode",
    "leaves",
    "ownable",
    "path_string",
    "printed_manager",
    "track_update",
]
