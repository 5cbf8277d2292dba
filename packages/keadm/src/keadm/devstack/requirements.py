"""What the stack needs from the machine, and how to get it.

The private containerd needs root and the Debian packages ``containerd``,
``runc``, ``containernetworking-plugins`` and ``busybox-static`` (the local
images are built from /bin/busybox). ``scripts/setup`` in the source tree
installs them; :func:`install_with_setup` runs it when that is possible (root
on Debian), otherwise the demo prints how to do it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = [
    "INSTALL_HINT",
    "find_setup_script",
    "install_with_setup",
    "is_debian",
    "missing_requirements",
]

APT_PACKAGES = "containerd runc containernetworking-plugins busybox-static"
INSTALL_HINT = (
    "install them with `sudo scripts/setup` from the kubeedge-py source tree, or on "
    f"Debian/Ubuntu: `sudo apt-get install {APT_PACKAGES}`"
)


def missing_requirements() -> list[str]:
    """The binaries the private containerd and the local images need but are absent."""
    missing = [
        tool for tool in ("/usr/bin/containerd", "/usr/bin/ctr", "/bin/busybox")
        if not Path(tool).exists()
    ]
    if shutil.which("runc") is None:
        missing.append("runc")
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("/usr/lib/cni/bridge (containernetworking-plugins)")
    return missing


def is_debian() -> bool:
    return Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def find_setup_script() -> Path | None:
    """``scripts/setup`` of the source tree this package runs from, if any."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "scripts" / "setup"
        if candidate.is_file() and (parent / "packages").is_dir():
            return candidate
    return None


def install_with_setup(log_file: Path) -> tuple[bool, str]:
    """Run ``scripts/setup`` (root on Debian only); returns (ok, why not / where logged)."""
    if os.geteuid() != 0:
        return False, "not root"
    if not is_debian():
        return False, "not a Debian system"
    script = find_setup_script()
    if script is None:
        return False, "scripts/setup not found (not running from a source tree)"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.run(
            ["bash", str(script)], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            check=False, timeout=1800,
        )
    if proc.returncode != 0:
        return False, f"scripts/setup exited with {proc.returncode} (log: {log_file})"
    return True, str(log_file)
