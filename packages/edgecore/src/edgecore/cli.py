"""The `edgecore` command line, shaped like KubeEdge's.

``edgecore --config FILE`` runs; ``--defaultconfig`` / ``--minconfig`` print
a config (``edge/cmd/edgecore/app/server.go``); ``--check`` loads and
validates a config and exits without starting anything. The options are
shared with ``cloudcore`` (:mod:`kecommon.corecli`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from kecommon.config import (
    DEFAULT_EDGECORE_CONFIG_PATH,
    EdgeCoreConfig,
    default_edgecore_config,
    load_edgecore_config,
    minimal_edgecore_config,
)
from kecommon.corecli import CoreCommand, build_app


def run(cfg: EdgeCoreConfig, config_path: Path) -> int:
    """Run edgecore with ``cfg`` until stopped; returns the exit code."""
    from edgecore import app as edgecore_app

    log = logging.getLogger("edgecore")
    log.info(
        "edgecore starting: node %s, config %s", cfg.modules.edged.hostname_override, config_path
    )
    try:
        return asyncio.run(edgecore_app.run(cfg, config_file=config_path))
    except Exception as exc:  # e.g. unreadable certificates: one clear line
        log.debug("edgecore failed", exc_info=True)
        typer.echo(f"edgecore: {exc}", err=True)
        return 1


app = build_app(
    CoreCommand(
        name="edgecore",
        default_config_path=DEFAULT_EDGECORE_CONFIG_PATH,
        load=load_edgecore_config,
        default_config=default_edgecore_config,
        minimal_config=minimal_edgecore_config,
        run=run,
    )
)


def main() -> None:
    app()
