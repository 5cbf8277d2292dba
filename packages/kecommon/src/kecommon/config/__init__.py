"""KubeEdge-compatible configuration: models, loading, validation and dumping.

``cloudcore.yaml`` (``cloudcore.config.kubeedge.io/v1alpha1``, kind
``CloudCore``) and ``edgecore.yaml`` (``edgecore.config.kubeedge.io/v1alpha2``,
kind ``EdgeCore``) with KubeEdge's keys and defaults (protocol.md section 9).
See docs/configuration.md for the loading rules.

The names below are imported on first use (PEP 562), so that a process pays
only for the models it touches: building a core's pydantic models costs
several MiB of RSS, and edgecore never needs cloudcore's (docs/performance.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kecommon.config.base import ConfigError, GoDuration, KEModel, duration_seconds
    from kecommon.config.cloudcore import CloudCoreConfig
    from kecommon.config.cloudload import (
        default_cloudcore_config,
        load_cloudcore_config,
        minimal_cloudcore_config,
        parse_cloudcore_config,
    )
    from kecommon.config.edgecore import EdgeCoreConfig
    from kecommon.config.edgeload import (
        default_edgecore_config,
        load_edgecore_config,
        minimal_edgecore_config,
        parse_edgecore_config,
    )
    from kecommon.config.files import (
        DEFAULT_CLOUDCORE_CONFIG_PATH,
        DEFAULT_EDGECORE_CONFIG_PATH,
        dump_yaml,
        write_yaml,
    )
    from kecommon.config.host import hostname, local_ip
    from kecommon.config.validation import validate_cloudcore, validate_edgecore

#: public name -> the submodule that defines it
_WHERE = {
    "ConfigError": "base",
    "GoDuration": "base",
    "KEModel": "base",
    "duration_seconds": "base",
    "CloudCoreConfig": "cloudcore",
    "default_cloudcore_config": "cloudload",
    "load_cloudcore_config": "cloudload",
    "minimal_cloudcore_config": "cloudload",
    "parse_cloudcore_config": "cloudload",
    "EdgeCoreConfig": "edgecore",
    "default_edgecore_config": "edgeload",
    "load_edgecore_config": "edgeload",
    "minimal_edgecore_config": "edgeload",
    "parse_edgecore_config": "edgeload",
    "DEFAULT_CLOUDCORE_CONFIG_PATH": "files",
    "DEFAULT_EDGECORE_CONFIG_PATH": "files",
    "dump_yaml": "files",
    "write_yaml": "files",
    "hostname": "host",
    "local_ip": "host",
    "validate_cloudcore": "validation",
    "validate_edgecore": "validation",
}

__all__ = [
    "DEFAULT_CLOUDCORE_CONFIG_PATH",
    "DEFAULT_EDGECORE_CONFIG_PATH",
    "CloudCoreConfig",
    "ConfigError",
    "EdgeCoreConfig",
    "GoDuration",
    "KEModel",
    "default_cloudcore_config",
    "default_edgecore_config",
    "dump_yaml",
    "duration_seconds",
    "hostname",
    "load_cloudcore_config",
    "load_edgecore_config",
    "local_ip",
    "minimal_cloudcore_config",
    "minimal_edgecore_config",
    "parse_cloudcore_config",
    "parse_edgecore_config",
    "validate_cloudcore",
    "validate_edgecore",
    "write_yaml",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
