"""metamanager settings, from ``modules.metaManager`` and ``database`` of edgecore.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_DATA_SOURCE",
    "DEFAULT_REMOTE_QUERY_TIMEOUT",
    "MetaSettings",
    "from_config",
]

DEFAULT_DATA_SOURCE = "/var/lib/kubeedge/edgecore.db"
#: metaManager.remoteQueryTimeout (seconds), KubeEdge's default
DEFAULT_REMOTE_QUERY_TIMEOUT = 60.0


@dataclass(slots=True)
class MetaSettings:
    data_source: str = DEFAULT_DATA_SOURCE
    remote_query_timeout: float = DEFAULT_REMOTE_QUERY_TIMEOUT
    #: the module requests to the cloud go to (``contextSendModule``)
    hub_module: str = "websocket"
    #: kubeedge-py: edge requests handled at once; more wait for a free slot
    max_concurrent_requests: int = 64
    #: kubeedge-py: edge requests that may wait for a slot; one more is answered at
    #: once with 429 TooManyRequests (the receive loop itself never waits for a slot)
    max_queued_requests: int = 256


def from_config(cfg: Any) -> MetaSettings:
    mm = getattr(getattr(cfg, "modules", None), "meta_manager", None)
    db = getattr(cfg, "database", None)
    return MetaSettings(
        data_source=str(getattr(db, "data_source", None) or DEFAULT_DATA_SOURCE),
        remote_query_timeout=float(
            getattr(mm, "remote_query_timeout", None) or DEFAULT_REMOTE_QUERY_TIMEOUT
        ),
        hub_module=str(getattr(mm, "context_send_module", None) or "websocket"),
    )
