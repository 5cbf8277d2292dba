"""Run cloudcore or edgecore as a service: a systemd unit, or a background process.

KubeEdge's keadm writes ``/etc/systemd/system/<name>.service`` (Type=simple,
Restart=always, RestartSec=10) and starts it with systemctl, or, on machines
without systemd, starts the binary in the background with its log in
``/var/log/kubeedge/`` (protocol.md section 8.2, steps 5 and 8). We do the
same. A background process gets a pid file holding its pid and its start time
from ``/proc``, so a recycled pid is never taken for ours.

Commands are argument lists, never shell strings: nothing a user typed reaches
a shell.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from keadm.errors import KeadmError

__all__ = [
    "SERVICE_MANAGER_ENV",
    "BackgroundService",
    "Service",
    "ServiceSpec",
    "SystemdService",
    "python_env",
    "python_module_argv",
    "render_unit",
    "service_for",
    "systemd_running",
]

SYSTEMD_UNIT_DIR = Path("/etc/systemd/system")


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for ``python -m <our package>``: our ``sys.path`` as PYTHONPATH.

    From a checkout the packages run from their sources (the test config puts
    ``packages/*/src`` on ``sys.path``), so a child must see the same path.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def python_module_argv(module: str, *args: str) -> list[str]:
    """``[this python, -m, module, *args]``: the same interpreter keadm runs on."""
    return [sys.executable, "-m", module, *args]


def systemd_running() -> bool:
    """True when systemd is this machine's init (sd_booted's test)."""
    return Path("/run/systemd/system").is_dir()


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """What to run and where its traces go.

    Attributes:
        name: ``cloudcore`` or ``edgecore``.
        argv: the command.
        log_file: stdout and stderr of a background process (appended).
        pid_file: the background process's pid file.
        unit_name: the systemd unit, ``edgecore.service`` for a system install.
        env: extra environment.
        description: the unit's Description.
    """

    name: str
    argv: Sequence[str]
    log_file: Path
    pid_file: Path
    unit_name: str
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


def render_unit(spec: ServiceSpec) -> str:
    """The systemd unit KubeEdge's keadm writes, for our command."""
    lines = [
        "[Unit]",
        f"Description={spec.description or spec.name}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={shlex.join(spec.argv)}",
        "Restart=always",
        "RestartSec=10",
    ]
    for key, value in sorted(spec.env.items()):
        # systemd's own quoting: the whole assignment in double quotes.
        escaped = f"{key}={value}".replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'Environment="{escaped}"')
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


class Service(Protocol):
    spec: ServiceSpec

    def start(self) -> str:
        """Start it; returns how to read its log and how to stop it."""

    def running(self) -> bool: ...

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop and uninstall it; True when something was stopped."""

    def how_to_log(self) -> str: ...

    def how_to_stop(self) -> str: ...


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = stat[stat.rfind(")") + 2:].split()
    if not rest or rest[0] == "Z":
        return None
    return rest[19]


@dataclass
class BackgroundService:
    """A detached child in its own session, logging to ``spec.log_file``."""

    spec: ServiceSpec

    def _read_pid(self) -> tuple[int, str] | None:
        try:
            text = self.spec.pid_file.read_text().split()
            return int(text[0]), text[1]
        except (OSError, ValueError, IndexError):
            return None

    def pid(self) -> int | None:
        """The pid of our process if it still runs."""
        found = self._read_pid()
        if found is None:
            return None
        pid, started = found
        return pid if _proc_start_time(pid) == started else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> str:
        if self.running():
            return f"{self.spec.name} already runs (pid {self.pid()})"
        self.spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.spec.pid_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.spec.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            os.write(fd, f"--- keadm: starting {list(self.spec.argv)}\n".encode())
            proc = subprocess.Popen(
                list(self.spec.argv),
                stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                env=python_env(self.spec.env), start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            raise KeadmError(
                f"cannot start {self.spec.name}: {exc}",
                f"check that {self.spec.argv[0]} exists and runs",
            ) from exc
        finally:
            os.close(fd)
        started = _proc_start_time(proc.pid)
        if started is None:
            raise KeadmError(
                f"{self.spec.name} exited at once with code {proc.poll()}",
                f"read {self.spec.log_file}",
            )
        tmp = self.spec.pid_file.with_name(self.spec.pid_file.name + ".tmp")
        tmp.write_text(f"{proc.pid} {started}\n")
        tmp.replace(self.spec.pid_file)
        return f"{self.spec.name} runs in the background, pid {proc.pid}"

    def exited_code(self) -> int | None:
        """Not knowable for a detached process once keadm is gone; None."""
        return None

    def stop(self, timeout: float = 15.0) -> bool:
        pid = self.pid()
        stopped = False
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid() is not None and time.monotonic() < deadline:
                # Our own child (the demo, the tests) must be reaped or it stays a zombie.
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.05)
            if self.pid() is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            stopped = True
        with contextlib.suppress(FileNotFoundError):
            self.spec.pid_file.unlink()
        return stopped

    def how_to_log(self) -> str:
        return f"tail -f {self.spec.log_file}"

    def how_to_stop(self) -> str:
        return f"kill $(cut -d' ' -f1 {self.spec.pid_file})   (or keadm reset)"


@dataclass
class SystemdService:
    """A unit in ``/etc/systemd/system``, enabled and started with systemctl."""

    spec: ServiceSpec
    unit_dir: Path = SYSTEMD_UNIT_DIR

    @property
    def unit_file(self) -> Path:
        return self.unit_dir / self.spec.unit_name

    def _systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            res = subprocess.run(
                ["systemctl", *args], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KeadmError(f"systemctl {' '.join(args)} failed: {exc}",
                             "check that systemd runs this machine") from exc
        if check and res.returncode != 0:
            raise KeadmError(
                f"systemctl {' '.join(args)} failed: {res.stderr.strip() or res.stdout.strip()}",
                f"read `journalctl -u {self.spec.unit_name}`",
            )
        return res

    def running(self) -> bool:
        if not self.unit_file.exists():
            return False
        return self._systemctl("is-active", "--quiet", self.spec.unit_name,
                               check=False).returncode == 0

    def start(self) -> str:
        self.unit_dir.mkdir(parents=True, exist_ok=True)
        self.unit_file.write_text(render_unit(self.spec))
        self._systemctl("daemon-reload")
        self._systemctl("enable", "--now", self.spec.unit_name)
        return f"{self.spec.name} runs as systemd unit {self.spec.unit_name}"

    def stop(self, timeout: float = 15.0) -> bool:
        if not self.unit_file.exists():
            return False
        self._systemctl("disable", "--now", self.spec.unit_name, check=False)
        self.unit_file.unlink()
        self._systemctl("daemon-reload", check=False)
        return True

    def how_to_log(self) -> str:
        return f"journalctl -u {self.spec.unit_name} -f"

    def how_to_stop(self) -> str:
        return f"systemctl stop {self.spec.unit_name}   (or keadm reset)"


#: ``auto`` (default), ``systemd`` or ``background``: how keadm runs the cores.
#: The demo and the tests say ``background`` so that nothing of theirs lands in
#: /etc/systemd even on a machine that systemd runs.
SERVICE_MANAGER_ENV = "KEADM_SERVICE_MANAGER"


def service_for(spec: ServiceSpec, *, use_systemd: bool | None = None) -> Service:
    """A systemd unit when systemd runs the machine, otherwise a background process.

    Raises:
        KeadmError: ``$KEADM_SERVICE_MANAGER`` holds something else than
            auto, systemd or background.
    """
    if use_systemd is None:
        choice = os.environ.get(SERVICE_MANAGER_ENV, "auto").strip().lower() or "auto"
        if choice not in ("auto", "systemd", "background"):
            raise KeadmError(
                f"${SERVICE_MANAGER_ENV}={choice!r} is not auto, systemd or background",
                f"unset {SERVICE_MANAGER_ENV} or set it to one of those",
            )
        use_systemd = systemd_running() if choice == "auto" else choice == "systemd"
    if use_systemd:
        return SystemdService(spec)
    return BackgroundService(spec)
