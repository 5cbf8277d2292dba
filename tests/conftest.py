"""Root conftest: loads every fixture plugin under tests/fixtures/.

Each file ``tests/fixtures/<name>.py`` is a pytest plugin that provides the
fixtures for one real component (API server, containerd, MQTT broker, ...).
"""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted(
    f"fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if not p.name.startswith("_")
)
