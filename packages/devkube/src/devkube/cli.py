"""The `devkube` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="An embedded Kubernetes API server."
)


@app.command()
def serve() -> None:
    """Serve the API."""
    typer.echo("devkube serve: not implemented yet", err=True)
    raise typer.Exit(2)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("devkube 0.1.0")


def main() -> None:
    app()
