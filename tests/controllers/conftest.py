"""The controller tests call the stand-in cloudhub harness simply ``hub``."""

from __future__ import annotations

import pytest

from fixtures.controller_hub import Hub


@pytest.fixture
def hub(controller_hub: Hub) -> Hub:
    return controller_hub
