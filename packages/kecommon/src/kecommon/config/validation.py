"""Semantic checks on a loaded config, as KubeEdge's ``validation`` packages do.

Mirrors ``cloud/pkg/.../validation/validation.go`` and
``edge/pkg/.../validation/validation.go`` for the options we implement:
addresses must be IPs, ports in range, at least one advertise address, a
positive token refresh interval, exactly one edgeHub transport, and a node
name Kubernetes accepts. Files are not opened here: ``--check`` must work on
a machine that has no certificates yet.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from kecommon.config.base import ConfigError

if TYPE_CHECKING:  # annotations only: edgecore must not import the cloud models
    from kecommon.config.cloudcore import CloudCoreConfig
    from kecommon.config.edgecore import EdgeCoreConfig

__all__ = ["validate_cloudcore", "validate_edgecore"]

# A DNS-1123 subdomain: what Kubernetes requires of a node name.
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def _ip(value: str, key: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not an IP address", key=key) from None


def _port(value: int, key: str) -> None:
    if not 1 <= value <= 65535:
        raise ConfigError(f"port {value} is not in 1-65535", key=key)


def _host_port(value: str, key: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"{value!r} is not host:port", key=key)
    _port(int(port), key)


def validate_cloudcore(cfg: CloudCoreConfig) -> None:
    """Raise :class:`ConfigError` for the first invalid value of ``cfg``."""
    if cfg.kind != "CloudCore":
        raise ConfigError(f"kind must be CloudCore, not {cfg.kind!r}", key="kind")
    if not cfg.api_version.startswith("cloudcore.config.kubeedge.io/"):
        raise ConfigError(
            f"apiVersion {cfg.api_version!r} is not cloudcore.config.kubeedge.io/*",
            key="apiVersion",
        )
    _host_port(
        cfg.common_config.monitor_server.bind_address, "commonConfig.monitorServer.bindAddress"
    )
    hub = cfg.modules.cloud_hub
    if not hub.enable:
        return
    base = "modules.cloudHub"
    if not hub.advertise_address:
        raise ConfigError("at least one address is required", key=f"{base}.advertiseAddress")
    for i, address in enumerate(hub.advertise_address):
        _ip(address, f"{base}.advertiseAddress[{i}]")
    if hub.token_refresh_duration <= 0:
        raise ConfigError("must be greater than 0", key=f"{base}.tokenRefreshDuration")
    if hub.edge_cert_signing_duration <= 0:
        raise ConfigError("must be greater than 0", key=f"{base}.edgeCertSigningDuration")
    if hub.keepalive_interval <= 0:
        raise ConfigError("must be greater than 0", key=f"{base}.keepaliveInterval")
    if hub.node_limit <= 0:
        raise ConfigError("must be greater than 0", key=f"{base}.nodeLimit")
    if not (hub.websocket.enable or hub.quic.enable):
        raise ConfigError("enable websocket or quic", key=base)
    for name, server in (("websocket", hub.websocket), ("quic", hub.quic), ("https", hub.https)):
        if server.enable:
            _ip(server.address, f"{base}.{name}.address")
            _port(server.port, f"{base}.{name}.port")
    if hub.unix_socket.enable and not hub.unix_socket.address.startswith("unix://"):
        raise ConfigError("must start with unix://", key=f"{base}.unixsocket.address")


def validate_edgecore(cfg: EdgeCoreConfig) -> None:
    """Raise :class:`ConfigError` for the first invalid value of ``cfg``."""
    if cfg.kind != "EdgeCore":
        raise ConfigError(f"kind must be EdgeCore, not {cfg.kind!r}", key="kind")
    if not cfg.api_version.startswith("edgecore.config.kubeedge.io/"):
        raise ConfigError(
            f"apiVersion {cfg.api_version!r} is not edgecore.config.kubeedge.io/*",
            key="apiVersion",
        )
    if not cfg.database.data_source:
        raise ConfigError("must not be empty", key="database.dataSource")
    edged = cfg.modules.edged
    if edged.enable:
        base = "modules.edged"
        name = edged.hostname_override
        if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
            raise ConfigError(
                f"{name!r} is not a valid node name (lower-case DNS-1123 subdomain)",
                key=f"{base}.hostnameOverride",
            )
        if edged.node_ip:
            _ip(edged.node_ip, f"{base}.nodeIP")
        for label in edged.node_labels:
            _, _, label_name = label.rpartition("/")
            if len(label_name) > 63 or not _LABEL_NAME.match(label_name):
                raise ConfigError(f"{label!r} is not a valid label key", key=f"{base}.nodeLabels")
        if not edged.tailored_kubelet_config.container_runtime_endpoint:
            raise ConfigError(
                "must not be empty", key=f"{base}.tailoredKubeletConfig.containerRuntimeEndpoint"
            )
    hub = cfg.modules.edge_hub
    if hub.enable:
        base = "modules.edgeHub"
        if hub.websocket.enable == hub.quic.enable:
            raise ConfigError("exactly one of websocket and quic must be enabled", key=base)
        if hub.heartbeat <= 0:
            raise ConfigError("must be greater than 0", key=f"{base}.heartbeat")
        if hub.message_qps <= 0:
            raise ConfigError("must be greater than 0", key=f"{base}.messageQPS")
        if hub.message_burst <= 0:
            raise ConfigError("must be greater than 0", key=f"{base}.messageBurst")
        transport, name = (
            (hub.websocket, "websocket") if hub.websocket.enable else (hub.quic, "quic")
        )
        _host_port(transport.server, f"{base}.{name}.server")
        if not hub.http_server.startswith("https://"):
            raise ConfigError("must be an https:// URL", key=f"{base}.httpServer")
