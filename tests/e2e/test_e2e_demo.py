"""The demo, run as a user runs it: ``python -m keadm.devstack``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.helpers import demo_env, processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.containerd]


def test_demo_runs_a_pod_and_stops_everything(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "keadm.devstack", "--work-dir", str(work), "--timeout", "90"],
        env=demo_env(), capture_output=True, text=True, timeout=280, check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert re.search(r"✓ node +\S+ Ready=True", out), out
    assert re.search(r"✓ pod +\S+/hello Running on \S+", out), out
    assert "demo says: Hello from a ConfigMap, delivered by kubeedge-py" in out
    assert "✓ pod deleted" in out
    assert "demo passed" in out
    assert processes_mentioning(str(work)) == []
