"""Load, validate and build ``edgecore.yaml`` (the edge models only)."""

from __future__ import annotations

import os

from kecommon.config.base import ConfigError
from kecommon.config.edgecore import (
    Database,
    DeviceTwin,
    EdgeCoreConfig,
    EdgeCoreModules,
    Edged,
    EdgeHub,
    EdgeHubWebSocket,
    EventBus,
    TailoredKubeletConfig,
)
from kecommon.config.files import parse_model, read_text, report_unimplemented
from kecommon.config.validation import validate_edgecore

__all__ = [
    "default_edgecore_config",
    "load_edgecore_config",
    "minimal_edgecore_config",
    "parse_edgecore_config",
]


def parse_edgecore_config(text: str, *, file: str = "<string>") -> EdgeCoreConfig:
    """Parse and validate the text of an ``edgecore.yaml``."""
    cfg = parse_model(EdgeCoreConfig, text, file=file)
    try:
        validate_edgecore(cfg)
    except ConfigError as exc:
        raise exc.in_file(file) from None
    return cfg


def load_edgecore_config(path: str | os.PathLike[str], *, report: bool = True) -> EdgeCoreConfig:
    """Load, validate and return ``edgecore.yaml``; see :func:`load_cloudcore_config`."""
    name = os.fspath(path)
    cfg = parse_edgecore_config(read_text(name), file=name)
    if report:
        report_unimplemented(cfg, name)
    return cfg


def default_edgecore_config() -> EdgeCoreConfig:
    """Every option at KubeEdge's default (``NewDefaultEdgeCoreConfig``)."""
    return EdgeCoreConfig()


def minimal_edgecore_config() -> EdgeCoreConfig:
    """The options KubeEdge's ``NewMinEdgeCoreConfig`` sets; the rest keep defaults."""
    edged = Edged()
    hub = EdgeHub()
    bus = EventBus()
    return EdgeCoreConfig(
        api_version=EdgeCoreConfig().api_version,
        kind="EdgeCore",
        database=Database(data_source=Database().data_source),
        modules=EdgeCoreModules(
            device_twin=DeviceTwin(dmi_sock_path=DeviceTwin().dmi_sock_path),
            edged=Edged(
                enable=True,
                tailored_kubelet_config=TailoredKubeletConfig.model_validate(
                    TailoredKubeletConfig().model_dump()
                ),
                hostname_override=edged.hostname_override,
                pod_sandbox_image=edged.pod_sandbox_image,
                root_directory=edged.root_directory,
                max_container_count=edged.max_container_count,
                max_per_pod_container_count=edged.max_per_pod_container_count,
                node_labels={},
                register_schedulable=True,
                custom_interface_name="",
                register_node_namespace=edged.register_node_namespace,
            ),
            edge_hub=EdgeHub(
                heartbeat=hub.heartbeat,
                tls_ca_file=hub.tls_ca_file,
                tls_cert_file=hub.tls_cert_file,
                tls_private_key_file=hub.tls_private_key_file,
                websocket=EdgeHubWebSocket.model_validate(EdgeHubWebSocket().model_dump()),
                http_server=hub.http_server,
                token="",
            ),
            event_bus=EventBus(
                mqtt_qos=bus.mqtt_qos,
                mqtt_retain=bus.mqtt_retain,
                mqtt_server_external=bus.mqtt_server_external,
                mqtt_server_internal=bus.mqtt_server_internal,
                mqtt_sub_client_id="",
                mqtt_pub_client_id="",
                mqtt_username="",
                mqtt_password="",
                mqtt_mode=bus.mqtt_mode,
            ),
        ),
    )
