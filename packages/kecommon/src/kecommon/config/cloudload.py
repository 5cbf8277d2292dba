"""Load, validate and build ``cloudcore.yaml`` (the cloud models only)."""

from __future__ import annotations

import os

from kecommon.config.base import ConfigError
from kecommon.config.cloudcore import (
    DEFAULT_CA_FILE,
    DEFAULT_CA_KEY_FILE,
    DEFAULT_CERT_FILE,
    DEFAULT_KEY_FILE,
    CloudCoreConfig,
    CloudCoreModules,
    CloudHub,
    CloudHubHTTPS,
    CloudHubUnixSocket,
    CloudHubWebSocket,
    IptablesManager,
    Router,
)
from kecommon.config.files import parse_model, read_text, report_unimplemented
from kecommon.config.validation import validate_cloudcore

__all__ = [
    "default_cloudcore_config",
    "load_cloudcore_config",
    "minimal_cloudcore_config",
    "parse_cloudcore_config",
]


def parse_cloudcore_config(text: str, *, file: str = "<string>") -> CloudCoreConfig:
    """Parse and validate the text of a ``cloudcore.yaml``."""
    cfg = parse_model(CloudCoreConfig, text, file=file)
    try:
        validate_cloudcore(cfg)
    except ConfigError as exc:
        raise exc.in_file(file) from None
    return cfg


def load_cloudcore_config(path: str | os.PathLike[str], *, report: bool = True) -> CloudCoreConfig:
    """Load, validate and return ``cloudcore.yaml``.

    Args:
        path: the file (``/dev/stdin`` works).
        report: log the accepted-but-not-implemented keys (one warning line).

    Raises:
        ConfigError: unreadable file, bad YAML, unknown key, wrong type or an
            invalid value; the message names the file and the key path.
    """
    name = os.fspath(path)
    cfg = parse_cloudcore_config(read_text(name), file=name)
    if report:
        report_unimplemented(cfg, name)
    return cfg


def default_cloudcore_config() -> CloudCoreConfig:
    """Every option at KubeEdge's default (``NewDefaultCloudCoreConfig``)."""
    return CloudCoreConfig()


def minimal_cloudcore_config() -> CloudCoreConfig:
    """The options KubeEdge's ``NewMinCloudCoreConfig`` sets; the rest keep defaults."""
    return CloudCoreConfig(
        api_version=CloudCoreConfig().api_version,
        kind="CloudCore",
        modules=CloudCoreModules(
            cloud_hub=CloudHub(
                node_limit=1000,
                tls_ca_file=DEFAULT_CA_FILE,
                tls_ca_key_file=DEFAULT_CA_KEY_FILE,
                tls_cert_file=DEFAULT_CERT_FILE,
                tls_private_key_file=DEFAULT_KEY_FILE,
                advertise_address=CloudHub().advertise_address,
                unix_socket=CloudHubUnixSocket(
                    enable=True, address="unix:///var/lib/kubeedge/kubeedge.sock"
                ),
                websocket=CloudHubWebSocket(enable=True, port=10000, address="0.0.0.0"),
                https=CloudHubHTTPS(enable=True, port=10002, address="0.0.0.0"),
            ),
            router=Router(enable=False, address="0.0.0.0", port=9443, rest_timeout=60),
            iptables_manager=IptablesManager(enable=True, mode="internal"),
        ),
    )
