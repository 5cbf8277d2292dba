"""``python -m keadm.devstack``: the demo (see docs/demo.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keadm.devstack.demo import DemoOptions, run_demo

app = typer.Typer(add_completion=False)


@app.command()
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the stack and the pod running until Ctrl-C.")
    ] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", help="Where configs, data and logs go (empty or new)."),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig", help="Use this cluster (default: $KUBECONFIG, else devkube)."
        ),
    ] = None,
    quic: Annotated[
        bool, typer.Option("--quic", help="The edge joins over QUIC instead of WebSocket.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds each wait may take.")
    ] = 120.0,
) -> None:
    """Run devkube (or your cluster), cloudcore and edgecore, and one pod on the edge."""
    raise typer.Exit(
        run_demo(DemoOptions(
            work_dir=work_dir, keep=keep, timeout=timeout, kubeconfig=kubeconfig, quic=quic
        ))
    )


app()
