"""cloudcore.yaml and edgecore.yaml for an all-in-one stack on 127.0.0.1.

Pure: builds the config models from the ports and paths it is given. Every file
path points inside the stack's work dir, so nothing under /etc or /var/lib is
touched, and every server binds to 127.0.0.1 on a port picked by the launcher.
Modules that need services the stack does not run (MQTT for the event bus and
device twin, the meta server, the CSI socket, iptables) are disabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kecommon.config import (
    CloudCoreConfig,
    EdgeCoreConfig,
    default_cloudcore_config,
    default_edgecore_config,
    dump_yaml,
    parse_cloudcore_config,
    parse_edgecore_config,
)

__all__ = [
    "LOOPBACK",
    "CloudPorts",
    "CloudcorePaths",
    "EdgecorePaths",
    "cloudcore_config",
    "edgecore_config",
    "render_cloudcore",
    "render_edgecore",
]

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class CloudPorts:
    websocket: int
    https: int
    quic: int
    monitor: int


@dataclass(frozen=True, slots=True)
class CloudcorePaths:
    """Where cloudcore keeps its files, all under ``base``."""

    base: Path

    @property
    def config(self) -> Path:
        return self.base / "cloudcore.yaml"

    @property
    def ca_cert(self) -> Path:
        return self.base / "ca" / "rootCA.crt"

    @property
    def ca_key(self) -> Path:
        return self.base / "ca" / "rootCA.key"

    @property
    def server_cert(self) -> Path:
        return self.base / "certs" / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.base / "certs" / "server.key"

    @property
    def log(self) -> Path:
        return self.base / "cloudcore.log"


@dataclass(frozen=True, slots=True)
class EdgecorePaths:
    """Where edgecore keeps its files, all under ``base``."""

    base: Path

    @property
    def config(self) -> Path:
        return self.base / "edgecore.yaml"

    @property
    def ca_cert(self) -> Path:
        return self.base / "ca" / "rootCA.crt"

    @property
    def cert(self) -> Path:
        return self.base / "certs" / "server.crt"

    @property
    def key(self) -> Path:
        return self.base / "certs" / "server.key"

    @property
    def database(self) -> Path:
        return self.base / "edgecore.db"

    @property
    def root_directory(self) -> Path:
        return self.base / "kubelet"

    @property
    def log(self) -> Path:
        return self.base / "edgecore.log"


def cloudcore_config(
    *, kubeconfig: Path, ports: CloudPorts, paths: CloudcorePaths, quic: bool = False
) -> CloudCoreConfig:
    """cloudcore serving WebSocket (and QUIC when ``quic``) on 127.0.0.1."""
    cfg = default_cloudcore_config()
    cfg.kube_api_config.kube_config = str(kubeconfig)
    cfg.common_config.monitor_server.bind_address = f"{LOOPBACK}:{ports.monitor}"
    hub = cfg.modules.cloud_hub
    hub.advertise_address = [LOOPBACK]
    hub.dns_names = ["localhost"]
    hub.tls_ca_file = str(paths.ca_cert)
    hub.tls_ca_key_file = str(paths.ca_key)
    hub.tls_cert_file = str(paths.server_cert)
    hub.tls_private_key_file = str(paths.server_key)
    hub.websocket.address = LOOPBACK
    hub.websocket.port = ports.websocket
    hub.https.address = LOOPBACK
    hub.https.port = ports.https
    hub.quic.enable = quic
    hub.quic.address = LOOPBACK
    hub.quic.port = ports.quic
    hub.unix_socket.enable = False  # the CSI socket: we have no CSI driver
    hub.unix_socket.address = f"unix://{paths.base / 'kubeedge.sock'}"
    # Node authorization on: an edge may only touch its own node's objects.
    hub.authorization.enable = True
    hub.authorization.debug = False
    cfg.modules.router.enable = False
    cfg.modules.iptables_manager.enable = False
    stream = cfg.modules.cloud_stream
    stream.enable = False
    # Disabled, but no key of the file should point outside the work dir.
    stream.tls_tunnel_ca_file = str(paths.ca_cert)
    stream.tls_tunnel_cert_file = str(paths.server_cert)
    stream.tls_tunnel_private_key_file = str(paths.server_key)
    stream.tls_stream_ca_file = str(paths.base / "ca" / "streamCA.crt")
    stream.tls_stream_cert_file = str(paths.base / "certs" / "stream.crt")
    stream.tls_stream_private_key_file = str(paths.base / "certs" / "stream.key")
    cfg.modules.dynamic_controller.enable = False
    cfg.modules.task_manager.enable = False
    return cfg


def edgecore_config(
    *,
    node_name: str,
    token: str,
    ports: CloudPorts,
    paths: EdgecorePaths,
    runtime_endpoint: str,
    sandbox_image: str,
    heartbeat: int = 15,
    node_status_update_frequency: str = "10s",
    quic: bool = False,
) -> EdgeCoreConfig:
    """edgecore joining that cloudcore over WebSocket, or QUIC when ``quic``."""
    cfg = default_edgecore_config()
    cfg.database.data_source = str(paths.database)
    hub = cfg.modules.edge_hub
    # KubeEdge requires exactly one of the two on the edge.
    hub.websocket.enable = not quic
    hub.websocket.server = f"{LOOPBACK}:{ports.websocket}"
    hub.quic.enable = quic
    hub.quic.server = f"{LOOPBACK}:{ports.quic}"
    hub.http_server = f"https://{LOOPBACK}:{ports.https}"
    hub.token = token
    hub.heartbeat = heartbeat
    hub.tls_ca_file = str(paths.ca_cert)
    hub.tls_cert_file = str(paths.cert)
    hub.tls_private_key_file = str(paths.key)
    edged = cfg.modules.edged
    edged.hostname_override = node_name
    edged.node_ip = LOOPBACK
    edged.pod_sandbox_image = sandbox_image
    edged.root_directory = str(paths.root_directory)
    kubelet = edged.tailored_kubelet_config
    kubelet.container_runtime_endpoint = runtime_endpoint
    kubelet.image_service_endpoint = runtime_endpoint
    kubelet.static_pod_path = str(paths.base / "manifests")
    kubelet.node_status_update_frequency = node_status_update_frequency
    # These need an MQTT broker or other services the stack does not run.
    mods = cfg.modules
    mods.event_bus.enable = False
    mods.device_twin.enable = False
    mods.device_twin.dmi_sock_path = str(paths.base / "dmi.sock")
    bus_tls = mods.event_bus.tls
    bus_tls.tls_mqtt_ca_file = str(paths.ca_cert)
    bus_tls.tls_mqtt_cert_file = str(paths.cert)
    bus_tls.tls_mqtt_private_key_file = str(paths.key)
    meta_server = mods.meta_manager.meta_server
    meta_server.enable = False
    meta_server.tls_ca_file = str(paths.ca_cert)
    meta_server.tls_cert_file = str(paths.cert)
    meta_server.tls_private_key_file = str(paths.key)
    mods.service_bus.enable = False
    stream = mods.edge_stream
    stream.enable = False
    stream.tls_tunnel_ca_file = str(paths.ca_cert)
    stream.tls_tunnel_cert_file = str(paths.cert)
    stream.tls_tunnel_private_key_file = str(paths.key)
    mods.db_test.enable = False
    mods.task_manager.enable = False
    return cfg


def render_cloudcore(cfg: CloudCoreConfig) -> str:
    """The YAML text, checked by the same loader cloudcore uses."""
    text = dump_yaml(cfg)
    parse_cloudcore_config(text, file="cloudcore.yaml")
    return text


def render_edgecore(cfg: EdgeCoreConfig) -> str:
    text = dump_yaml(cfg)
    parse_edgecore_config(text, file="edgecore.yaml")
    return text
