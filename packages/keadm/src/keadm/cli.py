"""The ``keadm`` command line: init, gettoken, join, reset cloud|edge.

KubeEdge's flags where they apply (protocol.md section 8). The cloud commands
live in :mod:`keadm.cloud.commands`, the edge ones in :mod:`keadm.edge.commands`;
this module only puts them on one app.
"""

from __future__ import annotations

import logging
import os

import typer

from keadm.cloud import commands as cloud_commands
from keadm.edge import commands as edge_commands

app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Install kubeedge-py: `keadm init` on the cloud, `keadm join` on each edge.",
)
reset_app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Undo `keadm init` (reset cloud) or `keadm join` (reset edge).",
)
app.add_typer(reset_app, name="reset")

cloud_commands.register(app, reset_app)
edge_commands.register(app, reset_app)


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("KEADM_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app()
