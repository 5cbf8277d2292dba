"""The edge hub's settings, taken from ``modules.edgeHub`` of edgecore.yaml.

A plain dataclass so that the hub can be built in tests without a config
file; :func:`from_config` reads the foundation's pydantic ``EdgeCoreConfig``
(``kecommon.config``) by attribute, with KubeEdge's defaults for anything the
model does not carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_BOOTSTRAP_TOKEN_FILE",
    "DEFAULT_PROJECT_ID",
    "EdgeHubSettings",
    "from_config",
]

DEFAULT_PROJECT_ID = "e632aba927ea4ac2b575ec1603d56f10"
#: where ``keadm join`` leaves the token (protocol.md 5.4)
DEFAULT_BOOTSTRAP_TOKEN_FILE = Path("/etc/kubeedge/bootstrap-edgecore.conf")


@dataclass(slots=True)
class EdgeHubSettings:
    node_name: str
    http_server: str
    ws_server: str = ""
    quic_server: str = ""
    use_quic: bool = False
    project_id: str = DEFAULT_PROJECT_ID
    heartbeat: float = 15.0
    handshake_timeout: float = 30.0
    write_timeout: float = 15.0
    token: str = ""
    bootstrap_token_file: Path | None = DEFAULT_BOOTSTRAP_TOKEN_FILE
    tls_ca_file: Path = Path("/etc/kubeedge/ca/rootCA.crt")
    tls_cert_file: Path = Path("/etc/kubeedge/certs/server.crt")
    tls_private_key_file: Path = Path("/etc/kubeedge/certs/server.key")
    message_qps: float = 30.0
    message_burst: int = 60
    rotate_certificates: bool = True
    #: edgecore.yaml to rewrite without the token after a bootstrap
    config_file: Path | None = None
    #: kubeedge-py: reconnect back-off bounds (KubeEdge waits a fixed 2x heartbeat)
    reconnect_initial_backoff: float = 1.0
    reconnect_max_backoff: float = 30.0
    #: kubeedge-py: timeout of one HTTPS request to the bootstrap server
    http_timeout: float = 30.0
    #: kubeedge-py: polling period of a failing rotation (KubeEdge: 32 s)
    rotation_retry_max: float = 32.0
    #: frame size cap, as viaduct's MaxPayloadLen
    max_frame_size: int = 32 * 1024 * 1024

    def token_value(self) -> str:
        """The bootstrap token: the bootstrap file if present, else ``edgeHub.token``."""
        path = self.bootstrap_token_file
        if path is not None and path.is_file():
            text = path.read_text(encoding="utf-8").strip()
            if text:
                return text
        return self.token.strip()


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if obj is None:
            return default
        obj = getattr(obj, name, None)
    return default if obj is None else obj


def from_config(cfg: Any, *, config_file: Path | None = None) -> EdgeHubSettings:
    """Build settings from an ``EdgeCoreConfig`` (attribute access only)."""
    hub = _get(cfg, "modules", "edge_hub")
    node_name = str(_get(cfg, "modules", "edged", "hostname_override", default="") or "")
    if not node_name:
        import socket

        node_name = socket.gethostname().lower()
    quic_enabled = bool(_get(hub, "quic", "enable", default=False))
    ws = _get(hub, "websocket")
    quic = _get(hub, "quic")
    active = quic if quic_enabled else ws
    token_file = _get(hub, "bootstrap_token_file", default=DEFAULT_BOOTSTRAP_TOKEN_FILE)
    return EdgeHubSettings(
        node_name=node_name,
        http_server=str(_get(hub, "http_server", default="")),
        ws_server=str(_get(ws, "server", default="")),
        quic_server=str(_get(quic, "server", default="")),
        use_quic=quic_enabled,
        project_id=str(_get(hub, "project_id", default=DEFAULT_PROJECT_ID)),
        heartbeat=float(_get(hub, "heartbeat", default=15)),
        handshake_timeout=float(_get(active, "handshake_timeout", default=30)),
        write_timeout=float(_get(active, "write_deadline", default=15)),
        token=str(_get(hub, "token", default="")),
        bootstrap_token_file=Path(token_file) if token_file else None,
        tls_ca_file=Path(_get(hub, "tls_ca_file", default="/etc/kubeedge/ca/rootCA.crt")),
        tls_cert_file=Path(_get(hub, "tls_cert_file", default="/etc/kubeedge/certs/server.crt")),
        tls_private_key_file=Path(
            _get(hub, "tls_private_key_file", default="/etc/kubeedge/certs/server.key")
        ),
        message_qps=float(_get(hub, "message_qps", default=30)),
        message_burst=int(_get(hub, "message_burst", default=60)),
        rotate_certificates=bool(_get(hub, "rotate_certificates", default=True)),
        config_file=config_file,
    )
