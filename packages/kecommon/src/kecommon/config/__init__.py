"""KubeEdge-compatible configuration: models, loading, validation and dumping.

``cloudcore.yaml`` (``cloudcore.config.kubeedge.io/v1alpha1``, kind
``CloudCore``) and ``edgecore.yaml`` (``edgecore.config.kubeedge.io/v1alpha2``,
kind ``EdgeCore``) with KubeEdge's keys and defaults (protocol.md section 9).
See docs/configuration.md for the loading rules.
"""

from __future__ import annotations

from kecommon.config.base import ConfigError, GoDuration, KEModel, duration_seconds
from kecommon.config.cloudcore import CloudCoreConfig
from kecommon.config.edgecore import EdgeCoreConfig
from kecommon.config.host import hostname, local_ip
from kecommon.config.loading import (
    DEFAULT_CLOUDCORE_CONFIG_PATH,
    DEFAULT_EDGECORE_CONFIG_PATH,
    default_cloudcore_config,
    default_edgecore_config,
    dump_yaml,
    load_cloudcore_config,
    load_edgecore_config,
    minimal_cloudcore_config,
    minimal_edgecore_config,
    parse_cloudcore_config,
    parse_edgecore_config,
    write_yaml,
)
from kecommon.config.validation import validate_cloudcore, validate_edgecore

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
