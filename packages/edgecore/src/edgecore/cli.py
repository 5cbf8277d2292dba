"""The `edgecore` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help="edgecore of kubeedge-py.")


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", help="Config file.")] = None,
) -> None:
    """Run edgecore."""
    typer.echo("edgecore: not implemented yet", err=True)
    raise typer.Exit(2)


def main() -> None:
    app()
