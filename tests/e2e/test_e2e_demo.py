"""The demo, run as a user runs it: ``python -m keadm.devstack``."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.helpers import demo_env, processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.containerd]


def test_demo_runs_a_pod_and_stops_everything(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "keadm.devstack", "--work-dir", str(work), "--timeout", "90"],
        env=demo_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        # Ctrl-C rather than a kill: the demo then stops what it started.
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        pytest.fail("the demo did not finish in 240 s:\n" + out + err)
    assert proc.returncode == 0, out + err
    assert re.search(r"✓ node +\S+ Ready=True", out), out
    assert re.search(r"✓ pod +\S+/hello Running on \S+", out), out
    assert "demo says: Hello from a ConfigMap, delivered by kubeedge-py" in out
    assert "✓ pod deleted" in out
    assert "demo passed" in out
    assert processes_mentioning(str(work)) == []


class _Lines:
    """Lines of a pipe, read with a deadline (raw reads: no hidden buffering)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[str] = []
        self._partial = b""

    def until(self, text: str, deadline: float) -> bool:
        """Read until a line contains ``text``; False on EOF or deadline."""
        while not any(text in line for line in self.lines):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return False
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return False
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self.lines += [c.decode(errors="replace") for c in complete]
        return True


def test_demo_keep_runs_until_ctrl_c(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "keadm.devstack", "--keep", "--work-dir", str(work)],
        env=demo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    out = _Lines(proc.stdout.fileno())
    try:
        waiting = out.until("Press Ctrl-C", time.monotonic() + 150)
        assert waiting, "\n".join(out.lines)
        # Still running, with its processes, until Ctrl-C.
        assert proc.poll() is None
        assert processes_mentioning(str(work / "edgecore")) != []
    finally:
        # Ctrl-C, also when the test failed: the demo stops what it started.
        proc.send_signal(signal.SIGINT)
        try:
            out.until("demo passed", time.monotonic() + 120)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = "\n".join(out.lines)
    assert proc.returncode == 0, text
    assert "✓ pod deleted" in text
    assert "demo passed" in text
    assert processes_mentioning(str(work)) == []
