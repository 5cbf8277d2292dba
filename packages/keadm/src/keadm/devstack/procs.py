"""One child process of the development stack, with its own log file.

Processes are started from argument lists (never a shell string), in their own
session so a Ctrl-C in the terminal reaches only the launcher, which then stops
its children in order. :meth:`ManagedProcess.stop` signals only the process it
started: SIGTERM, then SIGKILL after a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keadm.services import python_env

__all__ = ["ManagedProcess", "python_env"]

log = logging.getLogger(__name__)


@dataclass
class ManagedProcess:
    """A child process logging to ``log_path`` (appended, so restarts keep history).

    Attributes:
        name: a short name for messages (``cloudcore``).
        argv: the command, as an argument list.
        log_path: where stdout and stderr go.
        env: the child's environment (default: :func:`python_env`).
        stop_timeout: seconds between SIGTERM and SIGKILL.
    """

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    stop_timeout: float = 15.0
    _proc: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"--- kubeedge-py devstack: starting {list(self.argv)}\n".encode())
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                env=dict(self.env) if self.env is not None else python_env(),
                start_new_session=True,
            )
        finally:
            os.close(fd)
        log.info("started %s pid %s, log %s", self.name, self._proc.pid, self.log_path)

    async def stop(self) -> int | None:
        """SIGTERM, wait up to ``stop_timeout``, then SIGKILL; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self.stop_timeout):
                    await proc.wait()
            except TimeoutError:
                log.warning("%s pid %s ignored SIGTERM; killing it", self.name, proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        log.info("%s pid %s stopped with %s", self.name, proc.pid, proc.returncode)
        return proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log yet)"
        return "\n".join(text[-lines:])
