"""The `edgecore` command line, shaped like KubeEdge's.

``edgecore --config FILE`` runs; ``--defaultconfig`` / ``--minconfig`` print
a config (``edge/cmd/edgecore/app/server.go``); ``--check`` loads and
validates a config and exits without starting anything.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from kecommon.config import (
    DEFAULT_EDGECORE_CONFIG_PATH,
    ConfigError,
    EdgeCoreConfig,
    default_edgecore_config,
    dump_yaml,
    load_edgecore_config,
    minimal_edgecore_config,
)

app = typer.Typer(add_completion=False, help="edgecore of kubeedge-py.")

#: Exit code for a config that does not load or validate.
EXIT_BAD_CONFIG = 1


@app.callback(invoke_without_command=True)
def main_command(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option("--config", help="The edgecore.yaml to use."),
    ] = Path(DEFAULT_EDGECORE_CONFIG_PATH),
    defaultconfig: Annotated[
        bool,
        typer.Option("--defaultconfig", help="Print a config with every option at its default."),
    ] = False,
    minconfig: Annotated[
        bool,
        typer.Option("--minconfig", help="Print the smallest useful config."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Load and validate --config, then exit."),
    ] = False,
) -> None:
    """Run edgecore, print a config, or check one."""
    if ctx.invoked_subcommand is not None:
        return
    if defaultconfig and minconfig:
        raise typer.BadParameter("use only one of --defaultconfig and --minconfig")
    if defaultconfig:
        typer.echo(dump_yaml(default_edgecore_config()), nl=False)
        raise typer.Exit(0)
    if minconfig:
        typer.echo(dump_yaml(minimal_edgecore_config(), only_set=True), nl=False)
        raise typer.Exit(0)
    if check:
        raise typer.Exit(check_config(config))
    _setup_logging()
    try:
        cfg = load_edgecore_config(config)
    except ConfigError as exc:
        typer.echo(f"edgecore: invalid config: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    raise typer.Exit(run(cfg, config_path=config))


def check_config(path: Path) -> int:
    """``--check``: load and validate ``path``; report what is not implemented."""
    try:
        cfg = load_edgecore_config(path, report=False)
    except ConfigError as exc:
        typer.echo(f"edgecore: invalid config: {exc}", err=True)
        return EXIT_BAD_CONFIG
    for key, reason in cfg.unimplemented_with_reasons():
        typer.echo(f"{path}: {key}: {reason}", err=True)
    typer.echo(f"{path}: OK")
    return 0


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# -- running ------------------------------------------------------------------------


def run(cfg: EdgeCoreConfig, *, config_path: Path) -> int:
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


def main() -> None:
    app()
