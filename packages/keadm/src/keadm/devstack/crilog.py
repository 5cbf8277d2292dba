"""Read a container's output from the file the CRI runtime writes.

containerd writes each container's stdout and stderr to the ``log_path`` that
``ContainerStatus`` reports (edged asks for ``<pod logs dir>/<container>/<attempt>.log``)
in the CRI log format, one record per line::

    2024-05-01T10:00:00.123456789Z stdout F the text

``F`` marks a full line, ``P`` a partial one continued by the next record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["container_log_path", "parse_cri_log", "read_container_log"]


def parse_cri_log(text: str) -> list[str]:
    """The lines the container wrote (stdout and stderr interleaved as written)."""
    lines: list[str] = []
    partial = ""
    for record in text.splitlines():
        parts = record.split(" ", 3)
        if len(parts) < 3:
            continue
        tag = parts[2]
        content = parts[3] if len(parts) == 4 else ""
        if tag == "P":
            partial += content
            continue
        lines.append(partial + content)
        partial = ""
    if partial:
        lines.append(partial)
    return lines


async def container_log_path(cri: Any, container_id: str) -> Path | None:
    """The log file of a container, from the runtime's ``ContainerStatus``."""
    status = await cri.container_status(container_id)
    path = str(getattr(status, "log_path", "") or "")
    return Path(path) if path else None


async def read_container_log(cri: Any, container_id: str) -> list[str]:
    """The lines written so far by a container (empty when it wrote nothing yet)."""
    path = await container_log_path(cri, container_id)
    if path is None:
        return []
    try:
        return parse_cri_log(path.read_text(errors="replace"))
    except FileNotFoundError:
        return []
