"""kubeedge-py benchmarks: speed and memory targets (docs/performance.md).

Run ``python -m bench [names...] [--quick]`` from the repository root (or
``nox -s bench -- [names...]``). Each benchmark prints its figures and whether
it met its target. Load is generated on loopback only, bounded in count and
time, and every process a benchmark starts is stopped by it.

This module holds what the benchmarks share: the result record, process
memory readings, the fd limit, and how to start our programs as subprocesses.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "REPO",
    "Result",
    "machine",
    "raise_nofile",
    "rss_kb",
    "subprocess_env",
]

REPO = Path(__file__).resolve().parent.parent


def _ensure_sources_on_path() -> None:
    # From a checkout the packages live in packages/*/src (nox installs them);
    # make `python -m bench` work in both cases without installing anything.
    for src in sorted((REPO / "packages").glob("*/src")):
        if str(src) not in sys.path:
            sys.path.append(str(src))


_ensure_sources_on_path()


@dataclass
class Result:
    """One benchmark's outcome: its figures and whether it met its target."""

    name: str
    target: str
    met: bool | None  # None: not measurable here (see ``notes``)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    command: str = ""
    date: str = field(default_factory=lambda: f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")

    def print(self) -> None:
        verdict = {True: "MET", False: "MISSED", None: "NOT MEASURED"}[self.met]
        print(f"== {self.name}: {verdict} (target: {self.target})", flush=True)
        for key, value in self.figures.items():
            if isinstance(value, float):
                value = f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
            print(f"   {key}: {value}")
        for note in self.notes:
            print(f"   note: {note}")
        print(flush=True)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)


def rss_kb(pid: int | None = None, field_name: str = "VmRSS") -> int:
    """Resident set size of ``pid`` (default: this process) in KiB, from /proc.

    ``field_name`` may also be ``RssAnon`` (private heap and stacks) or
    ``RssFile`` (pages of mapped files: shared libraries, shared with other
    processes that map them).
    """
    path = f"/proc/{pid or 'self'}/status"
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in {path}")


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted``; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            # Root may raise the hard limit too.
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            target = wanted
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def subprocess_env() -> dict[str, str]:
    """Environment for ``[sys.executable, "-m", ...]`` children: our sys.path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def machine() -> str:
    """One line describing this machine (cores, memory, Python, kernel)."""
    mem_kb = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            mem_kb = int(f.readline().split()[1])
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu or platform.machine()}), {mem_kb // 1024} MiB RAM, "
        f"Python {platform.python_version()}, Linux {platform.release()}"
    )
