"""Reading, parsing and dumping KubeEdge config files, for either core's model.

Loading follows KubeEdge: the YAML document is laid over the defaults, so a
missing key keeps its default (``helper.go`` Parse). On top of that we reject
what KubeEdge would silently drop (unknown keys, see :mod:`.base`) and report
the keys we accept without acting on them.

Dumping sorts keys at every level, as KubeEdge's ``--defaultconfig`` does
(sigs.k8s.io/yaml marshals through a JSON map, whose keys come out sorted).

Neither core's model is imported here: edgecore loads only
:mod:`.edgeload` (and the edge models), cloudcore only :mod:`.cloudload`,
so neither process pays for the other's pydantic models.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from kecommon.config.base import ConfigError, KEModel, check_keys

__all__ = [
    "DEFAULT_CLOUDCORE_CONFIG_PATH",
    "DEFAULT_EDGECORE_CONFIG_PATH",
    "MAX_CONFIG_SIZE",
    "dump_yaml",
    "parse_model",
    "read_text",
    "report_unimplemented",
    "write_yaml",
]

log = logging.getLogger(__name__)

DEFAULT_CLOUDCORE_CONFIG_PATH = "/etc/kubeedge/config/cloudcore.yaml"
DEFAULT_EDGECORE_CONFIG_PATH = "/etc/kubeedge/config/edgecore.yaml"
#: A config file is small; refuse to parse anything bigger.
MAX_CONFIG_SIZE = 4 * 1024 * 1024

M = TypeVar("M", bound=KEModel)


def read_text(path: str | os.PathLike[str]) -> str:
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_CONFIG_SIZE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=name) from exc
    if len(data) > MAX_CONFIG_SIZE:
        raise ConfigError(f"larger than {MAX_CONFIG_SIZE} bytes", file=name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8: {exc}", file=name) from exc


def _loc_path(model: type[KEModel], loc: tuple[int | str, ...]) -> str:
    """The dotted KubeEdge key path of a pydantic error location."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


def parse_model(model: type[M], text: str, *, file: str) -> M:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=file) from exc
    except RecursionError as exc:
        raise ConfigError("nested too deeply", file=file) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"the document must be a mapping, not {type(data).__name__}", file=file)
    try:
        data = check_keys(model, data)
    except ConfigError as exc:
        raise exc.in_file(file) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = _loc_path(model, tuple(err["loc"]))
        got = err.get("input")
        detail = (
            f"{err['msg']} (got {type(got).__name__} {got!r})" if got is not None else err["msg"]
        )
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise ConfigError(detail, key=key, file=file) from None


def report_unimplemented(cfg: KEModel, file: str) -> None:
    found = cfg.unimplemented_with_reasons()
    if found:
        # One line for the whole file, so it is reported once at start-up.
        log.warning(
            "%s: accepted but not implemented: %s",
            file,
            "; ".join(f"{path} ({reason})" for path, reason in found),
        )


def dump_yaml(cfg: KEModel, *, only_set: bool = False) -> str:
    """``cfg`` as KubeEdge YAML: camelCase keys, sorted at every level.

    ``only_set`` leaves out what was never set explicitly (used for
    ``--minconfig``); keys kept from the file (KubeEdge options we do not
    implement) are always written back.
    """
    data = cfg.model_dump(by_alias=True, mode="json", exclude_none=True, exclude_unset=only_set)
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)


def write_yaml(cfg: KEModel, path: str | os.PathLike[str]) -> None:
    """Write ``cfg`` to ``path`` (for keadm), replacing the file atomically."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(dump_yaml(cfg), encoding="utf-8")
    os.replace(tmp, target)
