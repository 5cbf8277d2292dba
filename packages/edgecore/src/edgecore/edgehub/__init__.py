"""edgehub: the edge's link to cloudhub (beehive module ``websocket``)."""

from __future__ import annotations

from edgecore.edgehub.hub import EdgeHub
from edgecore.edgehub.settings import EdgeHubSettings, from_config

__all__ = ["EdgeHub", "EdgeHubSettings", "from_config"]
