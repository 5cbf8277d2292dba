"""Fixtures for edged tests (see edged/helpers.py for MemMeta)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from edgecore.edged.cri import CRIClient
from edgecore.edged.devcontainerd import DevContainerd
from edgecore.edged.runtime import PodRuntime
from edged.helpers import MemMeta, make_settings, teardown_runtime


@pytest.fixture
def memmeta() -> MemMeta:
    return MemMeta()


@pytest_asyncio.fixture
async def runtime(
    containerd: DevContainerd, cri: CRIClient, memmeta: MemMeta, tmp_path: Path
) -> AsyncIterator[PodRuntime]:
    """A started PodRuntime on the private containerd; its pods are removed afterwards."""
    rt = PodRuntime(cri, memmeta, make_settings(containerd, tmp_path / "kubelet"))
    await rt.start()
    try:
        yield rt
    finally:
        await teardown_runtime(rt)
