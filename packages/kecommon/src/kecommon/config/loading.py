"""Load, validate and dump KubeEdge config files: both cores' functions in one place.

Importing this module builds both cores' models. The processes import what
they need instead (edgecore :mod:`.edgeload`, cloudcore :mod:`.cloudload`,
both on :mod:`.files`); this module stays for callers that want both, such as
keadm and the tests.
"""

from __future__ import annotations

from kecommon.config.cloudload import (
    default_cloudcore_config,
    load_cloudcore_config,
    minimal_cloudcore_config,
    parse_cloudcore_config,
)
from kecommon.config.edgeload import (
    default_edgecore_config,
    load_edgecore_config,
    minimal_edgecore_config,
    parse_edgecore_config,
)
from kecommon.config.files import (
    DEFAULT_CLOUDCORE_CONFIG_PATH,
    DEFAULT_EDGECORE_CONFIG_PATH,
    MAX_CONFIG_SIZE,
    dump_yaml,
    write_yaml,
)

__all__ = [
    "DEFAULT_CLOUDCORE_CONFIG_PATH",
    "DEFAULT_EDGECORE_CONFIG_PATH",
    "MAX_CONFIG_SIZE",
    "default_cloudcore_config",
    "default_edgecore_config",
    "dump_yaml",
    "load_cloudcore_config",
    "load_edgecore_config",
    "minimal_cloudcore_config",
    "minimal_edgecore_config",
    "parse_cloudcore_config",
    "parse_edgecore_config",
    "write_yaml",
]
