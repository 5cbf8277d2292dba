"""The `cloudcore` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help="cloudcore of kubeedge-py.")


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", help="Config file.")] = None,
) -> None:
    """Run cloudcore."""
    typer.echo("cloudcore: not implemented yet", err=True)
    raise typer.Exit(2)


def main() -> None:
    app()
