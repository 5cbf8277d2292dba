"""Kubernetes resource quantities (``500m``, ``64Mi``, ``1.5``, ``2G``) as numbers.

Pure. Only what edged needs: CPU in millicores and memory in bytes, following
``k8s.io/apimachinery/pkg/api/resource`` suffixes (binary Ki..Ei, decimal
n, u, m, k, M, G, T, P, E and exponent forms like ``1e3``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = ["QuantityError", "cpu_millis", "parse_quantity", "to_bytes"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_RE = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$")


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units (cores, bytes)."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _RE.match(value.strip())
    if not m:
        raise QuantityError(f"invalid quantity {value!r}")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation as exc:
        raise QuantityError(f"invalid quantity {value!r}") from exc
    suffix = m.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def cpu_millis(value: str | int | float) -> int:
    """CPU quantity in millicores, rounded up as Kubernetes does."""
    return math.ceil(parse_quantity(value) * 1000)


def to_bytes(value: str | int | float) -> int:
    """Memory quantity in bytes, rounded up."""
    return math.ceil(parse_quantity(value))
