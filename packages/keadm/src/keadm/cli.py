"""The `keadm` command line."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Install kubeedge-py.")


def _not_yet(name: str) -> None:
    typer.echo(f"keadm {name}: not implemented yet", err=True)
    raise typer.Exit(2)


@app.command()
def init() -> None:
    """Install cloudcore beside a Kubernetes API server."""
    _not_yet("init")


@app.command()
def gettoken() -> None:
    """Print the join token."""
    _not_yet("gettoken")


@app.command()
def join() -> None:
    """Join this machine to a cloudcore as an edge node."""
    _not_yet("join")


@app.command()
def reset() -> None:
    """Undo init or join."""
    _not_yet("reset")


def main() -> None:
    app()
