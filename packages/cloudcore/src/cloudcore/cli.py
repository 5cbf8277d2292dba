"""The `cloudcore` command line, shaped like KubeEdge's.

``cloudcore --config FILE`` runs; ``--defaultconfig`` / ``--minconfig`` print
a config (``cloud/cmd/cloudcore/app/server.go``); ``--check`` loads and
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
    DEFAULT_CLOUDCORE_CONFIG_PATH,
    CloudCoreConfig,
    ConfigError,
    default_cloudcore_config,
    dump_yaml,
    load_cloudcore_config,
    minimal_cloudcore_config,
)

app = typer.Typer(add_completion=False, help="cloudcore of kubeedge-py.")

#: Exit code for a config that does not load or validate.
EXIT_BAD_CONFIG = 1


@app.callback(invoke_without_command=True)
def main_command(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option("--config", help="The cloudcore.yaml to use."),
    ] = Path(DEFAULT_CLOUDCORE_CONFIG_PATH),
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
    """Run cloudcore, print a config, or check one."""
    if ctx.invoked_subcommand is not None:
        return
    if defaultconfig and minconfig:
        raise typer.BadParameter("use only one of --defaultconfig and --minconfig")
    if defaultconfig:
        typer.echo(dump_yaml(default_cloudcore_config()), nl=False)
        raise typer.Exit(0)
    if minconfig:
        typer.echo(dump_yaml(minimal_cloudcore_config(), only_set=True), nl=False)
        raise typer.Exit(0)
    if check:
        raise typer.Exit(check_config(config))
    _setup_logging()
    try:
        cfg = load_cloudcore_config(config)
    except ConfigError as exc:
        typer.echo(f"cloudcore: invalid config: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    raise typer.Exit(run(cfg, config_path=config))


def check_config(path: Path) -> int:
    """``--check``: load and validate ``path``; report what is not implemented."""
    try:
        cfg = load_cloudcore_config(path, report=False)
    except ConfigError as exc:
        typer.echo(f"cloudcore: invalid config: {exc}", err=True)
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


def run(cfg: CloudCoreConfig, *, config_path: Path) -> int:
    """Run cloudcore with ``cfg`` until stopped; returns the exit code."""
    from cloudcore import app as cloudcore_app

    logging.getLogger("cloudcore").info("cloudcore starting with %s", config_path)
    return asyncio.run(cloudcore_app.run(cfg))


def main() -> None:
    app()
