"""``keadm init``, ``keadm gettoken`` and ``keadm reset cloud``."""

from __future__ import annotations

import typer


def register(app: typer.Typer, reset_app: typer.Typer) -> None:
    """Put the cloud commands on ``app`` and ``reset_app``."""
