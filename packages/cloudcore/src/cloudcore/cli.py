"""The `cloudcore` command line, shaped like KubeEdge's.

``cloudcore --config FILE`` runs; ``--defaultconfig`` / ``--minconfig`` print
a config (``cloud/cmd/cloudcore/app/server.go``); ``--check`` loads and
validates a config and exits without starting anything. The options are
shared with ``edgecore`` (:mod:`kecommon.corecli`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from kecommon.config import (
    DEFAULT_CLOUDCORE_CONFIG_PATH,
    CloudCoreConfig,
    default_cloudcore_config,
    load_cloudcore_config,
    minimal_cloudcore_config,
)
from kecommon.corecli import CoreCommand, build_app


def run(cfg: CloudCoreConfig, config_path: Path) -> int:
    """Run cloudcore with ``cfg`` until stopped; returns the exit code."""
    from cloudcore import app as cloudcore_app
    from cloudcore.gctuning import tune_gc

    logging.getLogger("cloudcore").info("cloudcore starting with %s", config_path)
    tune_gc()  # fewer, shorter collector pauses on the delivery path
    return asyncio.run(cloudcore_app.run(cfg))


app = build_app(
    CoreCommand(
        name="cloudcore",
        default_config_path=DEFAULT_CLOUDCORE_CONFIG_PATH,
        load=load_cloudcore_config,
        default_config=default_cloudcore_config,
        minimal_config=minimal_cloudcore_config,
        run=run,
    )
)


def main() -> None:
    app()
