"""The `devkube` command line: ``devkube serve --address A --port P --kubeconfig PATH
[--data-dir DIR] [--tls/--no-tls]``."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from devkube.app import DevKube

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="An embedded Kubernetes API server."
)


@app.command()
def serve(
    kubeconfig: Annotated[Path, typer.Option(help="Where to write the admin kubeconfig.")],
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 6443,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Persist state in SQLite here.")
    ] = None,
    # HTTPS by default: kubectl sends no bearer token over plain HTTP, so a plain-HTTP
    # default would make the kubeconfig we write useless to kubectl.
    tls: Annotated[
        bool,
        typer.Option(
            "--tls/--no-tls",
            help="Serve HTTPS with a self-signed CA (default), or plain HTTP.",
        ),
    ] = True,
    token: Annotated[str | None, typer.Option(help="Admin bearer token (default: random).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Serve the API until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def run() -> None:
        kube = DevKube(
            address=address, port=port, kubeconfig=kubeconfig, data_dir=data_dir, tls=tls,
            token=token,
        )
        # Handlers first: whoever sees the kubeconfig may signal us right away.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await kube.start()
        logging.getLogger("devkube").info(
            "serving %s, kubeconfig %s", kube.url, kube.kubeconfig
        )
        try:
            await stop.wait()
        finally:
            await kube.stop()

    asyncio.run(run())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("devkube 0.1.0")


def main() -> None:
    app()
