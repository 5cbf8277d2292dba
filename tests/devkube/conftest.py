"""Protocol-level fixtures for devkube's own tests: an in-loop devkube and a raw client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from devkube_raw import Raw

from devkube import DevKube


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[DevKube]:
    # Plain HTTP: these protocol tests use aiohttp, which sends tokens over HTTP, and
    # open ad-hoc sessions without a CA. kubectl tests use kube_api, which is HTTPS.
    async with DevKube(
        kubeconfig=tmp_path / "kubeconfig", bookmark_interval=0.2, tls=False
    ) as k:
        yield k


@pytest.fixture
async def raw(kube: DevKube) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {kube.token}"}
    ) as session:
        yield Raw(session, kube.url)
