"""``--set key=value``: change one key of cloudcore.yaml or edgecore.yaml.

Keys are KubeEdge's dotted camelCase paths (``modules.edgeHub.heartbeat=10``,
``modules.cloudHub.advertiseAddress=[10.0.0.1]``). Values are read as YAML
scalars or flow collections, so ``10`` is a number, ``true`` a boolean and
``[a, b]`` a list. The result is parsed by the same strict loader the cores
use: a key neither KubeEdge nor we know is refused with its path and the
closest known key, as KubeEdge's ``keadm join --set`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import yaml

from keadm.errors import KeadmError
from kecommon.config import ConfigError, dump_yaml

__all__ = ["apply_sets", "parse_set"]

M = TypeVar("M")


def parse_set(item: str) -> tuple[list[str], Any]:
    """``a.b.c=v`` -> (``["a", "b", "c"]``, the YAML value of ``v``).

    Raises:
        KeadmError: no ``=``, an empty key or key part, or a value that is not YAML.
    """
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not key.strip() or any(not p for p in parts):
        raise KeadmError(
            f"--set {item!r} is not key=value",
            "write it as a dotted key and a value, e.g. --set modules.edgeHub.heartbeat=10",
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise KeadmError(
            f"--set {key}: the value {raw!r} is not valid YAML ({exc})",
            "quote the value, e.g. --set 'key=\"a:b\"'",
        ) from exc
    return parts, value


def apply_sets(
    cfg: M, sets: Sequence[str], *, parse: Callable[[str], M], file: str
) -> M:
    """``cfg`` with each ``--set`` applied, parsed again by ``parse``.

    Args:
        cfg: a config model (CloudCoreConfig or EdgeCoreConfig).
        sets: the ``key=value`` items, applied in order.
        parse: the strict loader of that config (``parse_edgecore_config``).
        file: the file's name, for messages.

    Raises:
        KeadmError: a malformed item, a key that does not exist, or a value of
            the wrong type.
    """
    if not sets:
        return cfg
    data: dict[str, Any] = yaml.safe_load(dump_yaml(cfg))  # type: ignore[arg-type]
    for item in sets:
        parts, value = parse_set(item)
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise KeadmError(
                    f"--set {item}: {where} is a {type(child).__name__}, not a section",
                    f"set {where} itself, e.g. --set {where}=...",
                )
            node = child
        node[parts[-1]] = value
    try:
        return parse(yaml.safe_dump(data, sort_keys=True))
    except ConfigError as exc:
        raise KeadmError(
            f"--set gives an invalid {file}: {exc}",
            f"check the key against `{file.split('.')[0]} --defaultconfig`",
        ) from exc
