"""The edgecore process: load the config, register the modules, run them.

Modules (KubeEdge names): ``websocket`` (edgehub, group ``hub``),
``metamanager`` (group ``meta``) and, when the package is present, ``edged``
(group ``edged``). The beehive runtime supervises them: metamanager and edged
are restarted with back-off when they crash; edgehub is not, because what
makes it fail (a bad token, a CA hash mismatch, an expired certificate) does not
go away by retrying, so the process exits non-zero with the reason logged.
SIGTERM/SIGINT stop the modules in reverse order and exit 0.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from beehive.module import Module, Registry, RestartPolicy
from beehive.runtime import Runtime
from edgecore import edgehub, metamanager

__all__ = ["build_registry", "load_edged_module", "run"]

log = logging.getLogger(__name__)

RESTART_ON_FAILURE = RestartPolicy(mode="on-failure", initial_backoff=1.0, max_backoff=30.0)
NO_RESTART = RestartPolicy()


def load_edged_module(cfg: Any) -> Module | None:
    """edged from ``edgecore.edged.module`` if that package is installed."""
    try:
        mod = importlib.import_module("edgecore.edged.module")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("edgecore.edged"):
            log.warning("edged is not available in this build; running without it")
            return None
        raise
    for factory in ("build_module", "create_module", "from_config"):
        fn = getattr(mod, factory, None)
        if callable(fn):
            return fn(cfg)  # type: ignore[no-any-return]
    for cls_name in ("Edged", "EdgedModule"):
        cls = getattr(mod, cls_name, None)
        if cls is not None:
            from_cfg = getattr(cls, "from_config", None)
            return from_cfg(cfg) if callable(from_cfg) else cls(cfg)  # type: ignore[no-any-return]
    raise RuntimeError("edgecore.edged.module has no build_module(cfg) or Edged class")


def build_registry(cfg: Any, *, config_file: Path | None = None) -> Registry:
    registry = Registry()
    registry.register(
        edgehub.EdgeHub(edgehub.from_config(cfg, config_file=config_file)), restart=NO_RESTART
    )
    registry.register(
        metamanager.MetaManager(metamanager.from_config(cfg)), restart=RESTART_ON_FAILURE
    )
    edged = load_edged_module(cfg)
    if edged is not None:
        registry.register(edged, restart=RESTART_ON_FAILURE)
    return registry


async def run(cfg: Any, *, config_file: Path | None = None) -> int:
    """Run edgecore until SIGTERM/SIGINT; returns the exit code."""
    registry = build_registry(cfg, config_file=config_file)
    runtime = Runtime(registry, cfg)
    return await runtime.run(handle_signals=True)

