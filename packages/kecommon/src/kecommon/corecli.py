"""The command line ``cloudcore`` and ``edgecore`` share, shaped like KubeEdge's.

``<core> --config FILE`` runs; ``--defaultconfig`` / ``--minconfig`` print a
config (``cloud/cmd/cloudcore/app/server.go``, ``edge/cmd/edgecore/app/server.go``);
``--check`` loads and validates a config and exits without starting anything.
Each core describes itself with a :class:`CoreCommand`; :func:`build_app`
turns it into the typer application, so both commands behave the same.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import typer

from kecommon.config import ConfigError, KEModel, dump_yaml

__all__ = ["EXIT_BAD_CONFIG", "CoreCommand", "build_app"]

#: Exit code for a config that does not load or validate.
EXIT_BAD_CONFIG = 1

C = TypeVar("C", bound=KEModel)


@dataclass(frozen=True, slots=True)
class CoreCommand(Generic[C]):
    """What differs between the two cores' command lines."""

    #: the command name, also the prefix of error lines (``cloudcore: ...``)
    name: str
    default_config_path: str
    #: ``load(path, report=...)``: raises ConfigError
    load: Callable[..., C]
    default_config: Callable[[], C]
    minimal_config: Callable[[], C]
    #: runs the core with a loaded config until it stops; returns the exit code
    run: Callable[[C, Path], int]


def build_app(command: CoreCommand[C]) -> typer.Typer:
    """The typer application of ``command``."""
    name = command.name
    app = typer.Typer(add_completion=False, help=f"{name} of kubeedge-py.")

    def check_config(path: Path) -> int:
        """``--check``: load and validate ``path``; report what is not implemented."""
        try:
            cfg = command.load(path, report=False)
        except ConfigError as exc:
            typer.echo(f"{name}: invalid config: {exc}", err=True)
            return EXIT_BAD_CONFIG
        for key, reason in cfg.unimplemented_with_reasons():
            typer.echo(f"{path}: {key}: {reason}", err=True)
        typer.echo(f"{path}: OK")
        return 0

    # The options are built here and used as default values, not in
    # Annotated: with postponed annotations typer would evaluate the help text
    # in module scope, where ``name`` does not exist.
    config_option = typer.Option(
        Path(command.default_config_path), "--config", help=f"The {name}.yaml to use."
    )
    defaultconfig_option = typer.Option(
        False, "--defaultconfig", help="Print a config with every option at its default."
    )
    minconfig_option = typer.Option(False, "--minconfig", help="Print the smallest useful config.")
    check_option = typer.Option(False, "--check", help="Load and validate --config, then exit.")

    @app.callback(invoke_without_command=True, help=f"Run {name}, print a config, or check one.")
    def main_command(
        ctx: typer.Context,
        config: Path = config_option,
        defaultconfig: bool = defaultconfig_option,
        minconfig: bool = minconfig_option,
        check: bool = check_option,
    ) -> None:
        if ctx.invoked_subcommand is not None:
            return
        if defaultconfig and minconfig:
            raise typer.BadParameter("use only one of --defaultconfig and --minconfig")
        if defaultconfig:
            typer.echo(dump_yaml(command.default_config()), nl=False)
            raise typer.Exit(0)
        if minconfig:
            typer.echo(dump_yaml(command.minimal_config(), only_set=True), nl=False)
            raise typer.Exit(0)
        if check:
            raise typer.Exit(check_config(config))
        _setup_logging()
        try:
            cfg = command.load(config)
        except ConfigError as exc:
            typer.echo(f"{name}: invalid config: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_CONFIG) from None
        raise typer.Exit(command.run(cfg, config))

    return app


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
