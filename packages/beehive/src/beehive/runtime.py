"""Run the enabled modules of a registry, supervise them, and shut down cleanly.

Mirrors ``staging/src/github.com/kubeedge/beehive/pkg/core/core.go`` (Run,
StartModules, GracefulShutdown), with two changes KubeEdge lacks: a restart
policy per module, and a process that exits non-zero when a module dies for
good instead of running on half-working.

Shutdown (a stop request, SIGINT/SIGTERM, or a fatal module failure) walks the
modules in reverse start order. Each gets ``cleanup()`` and then, if its body is
still running, a cancellation; the whole walk shares one deadline
(``shutdown_timeout``), and a module that overstays is logged and left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import Any

from beehive.context import Context
from beehive.module import Registration, Registry

__all__ = ["Runtime", "run_process"]

log = logging.getLogger(__name__)

#: Seconds :func:`run_process` grants leftover tasks after the shutdown.
_STRAGGLER_GRACE = 1.0


@dataclass(slots=True)
class _Running:
    reg: Registration
    task: asyncio.Task[None] | None = None
    failures: int = 0
    done: bool = False


class Runtime:
    """Starts, supervises and stops the enabled modules of a registry."""

    def __init__(
        self,
        registry: Registry,
        config: Any = None,
        *,
        context: Context | None = None,
        shutdown_timeout: float = 10.0,
    ) -> None:
        self.registry = registry
        self.config = config
        self.context = context or Context()
        self.shutdown_timeout = shutdown_timeout
        self._running: list[_Running] = []
        self._stop = asyncio.Event()
        self._failed: str | None = None
        self._started = asyncio.Event()
        self._stragglers: list[asyncio.Task[None]] = []

    # -- control ---------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the runtime to shut down; safe to call from a signal handler."""
        self._stop.set()

    @property
    def failed_module(self) -> str | None:
        """The module whose failure stopped the process, if any."""
        return self._failed

    async def wait_started(self) -> None:
        await self._started.wait()

    @property
    def stragglers(self) -> list[str]:
        """Modules that ignored cancellation and were left behind at shutdown."""
        return [t.get_name().removeprefix("module:") for t in self._stragglers if not t.done()]

    def running_modules(self) -> list[str]:
        return [r.reg.module.name for r in self._running if r.task and not r.task.done()]

    # -- main loop -------------------------------------------------------------

    async def run(self, *, handle_signals: bool = True) -> int:
        """Run until stopped; returns the process exit code (0 or 1)."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
        try:
            enabled = self.registry.enabled(self.config)
            # Every queue exists before any module runs, so a module may send
            # to one registered after it.
            for reg in enabled:
                self.context.add_module(reg.module.name, reg.module.group)
            for reg in enabled:
                running = _Running(reg)
                self._running.append(running)
                running.task = asyncio.create_task(
                    self._supervise(running), name=f"module:{reg.module.name}"
                )
                log.info("module %s (group %s) started", reg.module.name, reg.module.group)
            self._started.set()
            await self._stop.wait()
        finally:
            await self._shutdown()
            for sig in installed:
                loop.remove_signal_handler(sig)
        return 1 if self._failed else 0

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s, shutting down", sig.name)
        self.request_stop()

    async def _supervise(self, running: _Running) -> None:
        module, policy = running.reg.module, running.reg.restart
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await module.start(self.context)
            except asyncio.CancelledError:
                raise
            except Exception:
                lasted = asyncio.get_running_loop().time() - started
                if lasted >= policy.reset_after:
                    running.failures = 0
                running.failures += 1
                if self._stop.is_set():
                    log.warning("module %s failed during shutdown", module.name, exc_info=True)
                    return
                if not policy.allows(running.failures):
                    log.exception(
                        "module %s failed; restart policy %s gives up, stopping the process",
                        module.name,
                        policy.mode,
                    )
                    self._failed = module.name
                    self.request_stop()
                    return
                delay = policy.backoff(running.failures)
                log.exception(
                    "module %s failed (failure %d); restarting in %.1fs",
                    module.name,
                    running.failures,
                    delay,
                )
                await self._cleanup_one(module.name, module.cleanup(), self.shutdown_timeout)
                await asyncio.sleep(delay)
                continue
            log.info("module %s finished", module.name)
            running.done = True
            return

    async def _shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout
        for running in reversed(self._running):
            module = running.reg.module
            remaining = max(0.0, deadline - loop.time())
            await self._cleanup_one(module.name, module.cleanup(), remaining)
            task = running.task
            if task is not None and not task.done():
                task.cancel()
                remaining = max(0.0, deadline - loop.time())
                # asyncio.wait neither re-cancels the task nor swallows a
                # cancellation of the shutdown itself.
                await asyncio.wait({task}, timeout=remaining or 0.001)
                if not task.done():
                    self._stragglers.append(task)
                    log.error(
                        "module %s did not stop before the shutdown deadline; left behind",
                        module.name,
                    )
                    continue
            if task is not None and not task.cancelled() and task.exception() is not None:
                log.error("module %s raised while stopping: %r", module.name, task.exception())
            log.info("module %s stopped", module.name)
        self.context.close()

    @staticmethod
    async def _cleanup_one(name: str, coro: Any, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout or 0.001):
                await coro
        except TimeoutError:
            log.error("cleanup of module %s timed out", name)
        except Exception:
            log.exception("cleanup of module %s failed", name)


def run_process(runtime: Runtime, *, handle_signals: bool = True) -> int:
    """Run ``runtime`` on a fresh event loop and return the exit code.

    Unlike :func:`asyncio.run`, this does not wait forever for tasks that
    ignore cancellation: after the runtime's own shutdown (which already
    bounds the wait for each module), leftover tasks get one more
    cancellation and a short grace period, then the loop is closed anyway.
    """
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(runtime.run(handle_signals=handle_signals))
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=_STRAGGLER_GRACE))
            left = [t.get_name() for t in pending if not t.done()]
            if left:
                log.error("exiting with tasks that ignore cancellation: %s", ", ".join(left))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
