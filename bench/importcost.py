"""What importing edgecore costs in RSS, package by package: ``python -m bench.importcost``.

Imports, in order, what the edgecore process imports (``edgecore.app`` and
the edged module it loads) and prints the RSS added by each step. The
order matters (a step includes what it pulls in that earlier steps did not),
so read the column as "what this step added on top of the ones above".
Used by docs/performance.md to say what dominates edgecore's memory.
"""

from __future__ import annotations

import importlib
import sys

from bench import rss_kb

STEPS = [
    "asyncio",
    "ssl",
    "logging",
    "json",
    "yaml",
    "pydantic",
    "kecommon.config",
    "cryptography.x509",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "websockets.asyncio.client",
    "sqlalchemy",
    "aiohttp",
    "grpc",
    "grpc.aio",
    "cri_api",
    "typer",
    "edgecore.edgehub",
    "edgecore.metamanager",
    "edgecore.edged.module",
    "edgecore.app",
    "edgecore.cli",
]


def main() -> int:
    base = rss_kb()
    print(f"{'step':48} {'+MiB':>6} {'total MiB':>9} {'modules':>7}")
    print(f"{'(interpreter)':48} {'':>6} {base / 1024:9.1f} {len(sys.modules):7d}")
    last = base
    for name in STEPS:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(f"{name:48} not importable: {exc}")
            continue
        now = rss_kb()
        print(f"{name:48} {(now - last) / 1024:6.1f} {now / 1024:9.1f} {len(sys.modules):7d}")
        last = now
    return 0


if __name__ == "__main__":
    sys.exit(main())
