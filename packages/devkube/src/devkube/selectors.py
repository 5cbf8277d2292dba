"""Label and field selectors (pure).

Label selector grammar as in k8s.io/apimachinery/pkg/labels/selector.go:
``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, joined by commas.
Field selectors (fields/selector.go): ``f=v``, ``f==v``, ``f!=v`` joined by commas, on the
field labels a kind supports; anything else is a 400 from the caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devkube.errors import DevKubeError

_KEY = re.compile(r"^([a-z0-9A-Z][-a-zA-Z0-9_.]*/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$")


class SelectorError(DevKubeError, ValueError):
    """A selector that does not parse."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        # != and notin match objects without the label too, as in kube.
        return labels.get(self.key) not in self.values


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced parenthesis")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise SelectorError("unbalanced parenthesis")
    parts.append("".join(cur))
    return parts


def _check_key(key: str) -> str:
    if not key or not _KEY.match(key):
        raise SelectorError(f"invalid label key {key!r}")
    return key


def parse_labels(text: str | None) -> list[Requirement]:
    """Parse a label selector; an empty one selects everything."""
    if not text or not text.strip():
        return []
    reqs: list[Requirement] = []
    for raw in _split_top(text):
        part = raw.strip()
        if not part:
            raise SelectorError("empty requirement")
        # Guarded so a long selector never meets the backtracking regex needlessly.
        m = (re.fullmatch(r"([^\s(]+)\s+(in|notin)\s*\((.*)\)", part)
             if " in" in part or " notin" in part else None)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(_check_key(m.group(1)), m.group(2), values))
            continue
        for op in ("!=", "==", "="):
            if op in part:
                key, _, value = part.partition(op)
                value = value.strip()
                if "=" in value or "!" in value:
                    raise SelectorError(f"invalid requirement {part!r}")
                norm = "!=" if op == "!=" else "="
                reqs.append(Requirement(_check_key(key.strip()), norm, (value,)))
                break
        else:
            if part.startswith("!"):
                reqs.append(Requirement(_check_key(part[1:].strip()), "!"))
            else:
                reqs.append(Requirement(_check_key(part), "exists"))
    return reqs


def labels_match(reqs: list[Requirement], obj: dict[str, Any]) -> bool:
    if not reqs:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


def parse_fields(
    text: str | None, allowed: tuple[str, ...] | frozenset[str]
) -> list[FieldRequirement]:
    """Parse a field selector, accepting only ``allowed`` field labels."""
    if not text or not text.strip():
        return []
    reqs: list[FieldRequirement] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if "!=" in part:
            f, _, v = part.partition("!=")
            equal = False
        elif "==" in part:
            f, _, v = part.partition("==")
            equal = True
        elif "=" in part:
            f, _, v = part.partition("=")
            equal = True
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        f = f.strip()
        if f not in allowed:
            raise SelectorError(f'field label not supported: {f}')
        reqs.append(FieldRequirement(f, equal, v.strip()))
    return reqs


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form kube compares a field selector against ("" when absent)."""
    cur: Any = obj
    for seg in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(seg)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    return all((field_value(obj, r.field) == r.value) == r.equal for r in reqs)


Predicate = Callable[[dict[str, Any]], bool]


def predicate(labels: list[Requirement], fields: list[FieldRequirement]) -> Predicate | None:
    """A single matcher for both selectors, or None when everything matches."""
    if not labels and not fields:
        return None

    def match(obj: dict[str, Any]) -> bool:
        return labels_match(labels, obj) and fields_match(fields, obj)

    return match
