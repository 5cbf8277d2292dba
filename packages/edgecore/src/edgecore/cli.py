"""The `edgecore` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help="edgecore of kubeedge-py.")


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", help="Config file.")] = None,
) -> None:
    """Run edgecore."""
    from edgecore import app as edgecore_app

    if config is None:
        config = Path("/etc/kubeedge/config/edgecore.yaml")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code = edgecore_app.main(config)
    except Exception as exc:  # a config error: one clear line, no traceback
        typer.echo(f"edgecore: {exc}", err=True)
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


def main() -> None:
    app()
