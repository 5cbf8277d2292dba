"""Fixtures for edged tests (see edged/helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from edgecore.edged.cri import CRIClient
from edgecore.edged.devcontainerd import DevContainerd
from edgecore.edged.runtime import PodRuntime
from edged.helpers import EdgeStack, make_settings, teardown_runtime


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[EdgeStack]:
    """metamanager (SQLite in tmp_path) + MetaClient + the cloud stand-in, connected."""
    s = await EdgeStack.start(tmp_path / "edgecore.db")
    try:
        yield s
    finally:
        await s.stop()


@pytest_asyncio.fixture
async def runtime(
    containerd: DevContainerd, cri: CRIClient, stack: EdgeStack, tmp_path: Path
) -> AsyncIterator[PodRuntime]:
    """A started PodRuntime on the private containerd; its pods are removed afterwards."""
    rt = PodRuntime(cri, stack.meta, make_settings(containerd, tmp_path / "kubelet"))
    await rt.start()
    try:
        yield rt
    finally:
        await teardown_runtime(rt)
