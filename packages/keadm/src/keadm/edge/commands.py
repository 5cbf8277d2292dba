"""``keadm join`` and ``keadm reset edge``."""

from __future__ import annotations

import typer


def register(app: typer.Typer, reset_app: typer.Typer) -> None:
    """Put the edge commands on ``app`` and ``reset_app``."""
