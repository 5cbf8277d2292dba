"""Progress output for keadm's long steps: one line per step, a spinner in a terminal.

Each step prints ``✓ <title>  <detail> (1.2s)`` when it ends, or
``✗ <title>  <reason>`` when it fails. While a step waits, a terminal shows a
spinner with what it is waiting for; a pipe or a log file gets only the final
lines, so test output and CI logs stay readable.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from rich.console import Console
from rich.markup import escape

from keadm.errors import KeadmError

__all__ = ["Progress", "report_errors"]

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("keadm")


@dataclass
class Progress:
    console: Console = field(default_factory=lambda: Console(highlight=False))
    _status: object | None = field(default=None, init=False, repr=False)

    def ok(self, title: str, detail: str = "", seconds: float | None = None) -> None:
        took = f" [dim]({seconds:.1f}s)[/dim]" if seconds is not None else ""
        self.console.print(f"[green]✓[/green] {title:<22} {escape(detail)}{took}")
        log.info("%s: %s", title, detail)

    def info(self, text: str) -> None:
        self.console.print(escape(text))

    def warn(self, text: str) -> None:
        self.console.print(f"[yellow]![/yellow] {escape(text)}")
        log.warning("%s", text)

    def fail(self, title: str, reason: str) -> None:
        self.console.print(f"[red]✗[/red] {title:<22} {escape(reason)}")

    def waiting(self, text: str) -> None:
        """Say what the step waits for: the spinner text in a terminal, a log line otherwise."""
        status = self._status
        if status is not None:
            status.update(f"{escape(text)} ...")  # type: ignore[attr-defined]
        log.debug("waiting: %s", text)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[_Step]:
        """Time a step; the caller sets ``.detail`` for the final line."""
        st = _Step()
        t0 = time.monotonic()
        ctx: contextlib.AbstractContextManager[object]
        if self.console.is_terminal:
            ctx = self.console.status(f"{escape(title)} ...")
        else:
            ctx = contextlib.nullcontext()
        try:
            with ctx as status:
                self._status = status
                yield st
        except BaseException as exc:
            self._status = None
            reason = getattr(exc, "cause", None) or str(exc) or type(exc).__name__
            self.fail(title, str(reason))
            raise
        self._status = None
        self.ok(title, st.detail, time.monotonic() - t0)


@dataclass
class _Step:
    detail: str = ""


def report_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command: a :class:`KeadmError` prints its cause and fix and exits with its code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KeadmError as exc:
            err = Console(stderr=True, highlight=False)
            err.print(f"[red]error:[/red] {escape(exc.cause)}")
            if exc.fix:
                err.print(f"[bold]fix:[/bold] {escape(exc.fix)}")
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            Console(stderr=True).print("interrupted")
            raise SystemExit(130) from None

    return wrapper
