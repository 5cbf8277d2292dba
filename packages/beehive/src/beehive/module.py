"""The module protocol and the registry of modules.

A module mirrors KubeEdge's ``core.Module`` interface
(``staging/src/github.com/kubeedge/beehive/pkg/core/module.go``): it has a
``name`` and a ``group``, says whether it is ``enabled`` by the configuration,
``start`` runs its body until it is done or cancelled, and ``cleanup`` releases
what it holds. Modules never call each other; they talk only through the
:class:`~beehive.context.Context`.

Registration is data: the registry holds modules and their restart policy,
and the runtime (:mod:`beehive.runtime`) never imports a concrete module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from beehive.context import Context

__all__ = ["Module", "Registration", "Registry", "RestartPolicy"]

log = logging.getLogger(__name__)


@runtime_checkable
class Module(Protocol):
    """What every beehive module provides."""

    @property
    def name(self) -> str: ...

    @property
    def group(self) -> str: ...

    def enabled(self, config: Any) -> bool:
        """Whether ``config`` enables this module."""
        ...

    async def start(self, ctx: Context) -> None:
        """The module's body: runs until done or cancelled; raising is a crash."""
        ...

    async def cleanup(self) -> None:
        """Release resources; idempotent, and safe before or after ``start``."""
        ...


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """What the runtime does when a module's ``start`` raises.

    ``never``: the process shuts down and exits non-zero, so a crashed module
    never leaves a half-working process. ``on-failure``: the module is cleaned
    up and started again after a back-off that doubles from
    ``initial_backoff`` to ``max_backoff``; after ``max_restarts`` restarts
    (``None``: no limit) it is treated like ``never``. A run that lasted
    ``reset_after`` seconds resets the back-off.
    """

    mode: Literal["never", "on-failure"] = "never"
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    max_restarts: int | None = None
    reset_after: float = 60.0

    def backoff(self, failures: int) -> float:
        """Delay before restart number ``failures`` (1-based)."""
        return float(min(self.max_backoff, self.initial_backoff * 2 ** max(0, failures - 1)))

    def allows(self, failures: int) -> bool:
        if self.mode == "never":
            return False
        return self.max_restarts is None or failures <= self.max_restarts


NEVER = RestartPolicy()


@dataclass(frozen=True, slots=True)
class Registration:
    module: Module
    restart: RestartPolicy


class Registry:
    """The modules of one process, in start order."""

    def __init__(self) -> None:
        self._items: list[Registration] = []

    def register(self, module: Module, *, restart: RestartPolicy = NEVER) -> None:
        if any(r.module.name == module.name for r in self._items):
            raise ValueError(f"module {module.name!r} is already registered")
        self._items.append(Registration(module, restart))

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def enabled(self, config: Any) -> list[Registration]:
        """The registrations whose module ``config`` enables; logs the others."""
        chosen: list[Registration] = []
        for reg in self._items:
            if reg.module.enabled(config):
                chosen.append(reg)
            else:
                log.info("module %s (group %s) is disabled", reg.module.name, reg.module.group)
        return chosen
