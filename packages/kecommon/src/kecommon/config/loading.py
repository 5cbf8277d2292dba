"""Load, validate and dump KubeEdge config files.

Loading follows KubeEdge: the YAML document is laid over the defaults, so a
missing key keeps its default (``helper.go`` Parse). On top of that we reject
what KubeEdge would silently drop (unknown keys, see :mod:`.base`) and report
the keys we accept without acting on them.

Dumping sorts keys at every level, as KubeEdge's ``--defaultconfig`` does
(sigs.k8s.io/yaml marshals through a JSON map, whose keys come out sorted).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from kecommon.config.base import ConfigError, KEModel, check_keys
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
from kecommon.config.validation import validate_cloudcore, validate_edgecore

__all__ = [
    "DEFAULT_CLOUDCORE_CONFIG_PATH",
    "DEFAULT_EDGECORE_CONFIG_PATH",
    "MAX_CONFIG_SIZE",
    "default_cloudcore_config",
    "default_edgecore_config",
    "dump_yaml",
    "load_cloudcore_config",
    "load_edgecore_config",
    "minimal_cloudcore_config",
    "minimal_edgecore_config",
    "parse_cloudcore_config",
    "parse_edgecore_config",
]

log = logging.getLogger(__name__)

DEFAULT_CLOUDCORE_CONFIG_PATH = "/etc/kubeedge/config/cloudcore.yaml"
DEFAULT_EDGECORE_CONFIG_PATH = "/etc/kubeedge/config/edgecore.yaml"
#: A config file is small; refuse to parse anything bigger.
MAX_CONFIG_SIZE = 4 * 1024 * 1024

M = TypeVar("M", bound=KEModel)


def _read(path: str | os.PathLike[str]) -> str:
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_CONFIG_SIZE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=name) from exc
    if len(data) > MAX_CONFIG_SIZE:
        raise ConfigError(f"larger than {MAX_CONFIG_SIZE} bytes", file=name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8: {exc}", file=name) from exc


def _loc_path(model: type[KEModel], loc: tuple[int | str, ...]) -> str:
    """The dotted KubeEdge key path of a pydantic error location."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


def _parse(model: type[M], text: str, *, file: str) -> M:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=file) from exc
    except RecursionError as exc:
        raise ConfigError("nested too deeply", file=file) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"the document must be a mapping, not {type(data).__name__}", file=file)
    try:
        data = check_keys(model, data)
    except ConfigError as exc:
        raise exc.in_file(file) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = _loc_path(model, tuple(err["loc"]))
        got = err.get("input")
        detail = (
            f"{err['msg']} (got {type(got).__name__} {got!r})" if got is not None else err["msg"]
        )
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise ConfigError(detail, key=key, file=file) from None


def _report(cfg: KEModel, file: str) -> None:
    found = cfg.unimplemented_with_reasons()
    if found:
        # One line for the whole file, so it is reported once at start-up.
        log.warning(
            "%s: accepted but not implemented: %s",
            file,
            "; ".join(f"{path} ({reason})" for path, reason in found),
        )


def parse_cloudcore_config(text: str, *, file: str = "<string>") -> CloudCoreConfig:
    """Parse and validate the text of a ``cloudcore.yaml``."""
    cfg = _parse(CloudCoreConfig, text, file=file)
    try:
        validate_cloudcore(cfg)
    except ConfigError as exc:
        raise exc.in_file(file) from None
    return cfg


def parse_edgecore_config(text: str, *, file: str = "<string>") -> EdgeCoreConfig:
    """Parse and validate the text of an ``edgecore.yaml``."""
    cfg = _parse(EdgeCoreConfig, text, file=file)
    try:
        validate_edgecore(cfg)
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
    cfg = parse_cloudcore_config(_read(name), file=name)
    if report:
        _report(cfg, name)
    return cfg


def load_edgecore_config(path: str | os.PathLike[str], *, report: bool = True) -> EdgeCoreConfig:
    """Load, validate and return ``edgecore.yaml``; see :func:`load_cloudcore_config`."""
    name = os.fspath(path)
    cfg = parse_edgecore_config(_read(name), file=name)
    if report:
        _report(cfg, name)
    return cfg


def dump_yaml(cfg: KEModel, *, only_set: bool = False) -> str:
    """``cfg`` as KubeEdge YAML: camelCase keys, sorted at every level.

    ``only_set`` leaves out what was never set explicitly (used for
    ``--minconfig``); keys kept from the file (KubeEdge options we do not
    implement) are always written back.
    """
    data = cfg.model_dump(by_alias=True, mode="json", exclude_none=True, exclude_unset=only_set)
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)


def write_yaml(cfg: KEModel, path: str | os.PathLike[str]) -> None:
    """Write ``cfg`` to ``path`` (for keadm), replacing the file atomically."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(dump_yaml(cfg), encoding="utf-8")
    os.replace(tmp, target)


def default_cloudcore_config() -> CloudCoreConfig:
    """Every option at KubeEdge's default (``NewDefaultCloudCoreConfig``)."""
    return CloudCoreConfig()


def default_edgecore_config() -> EdgeCoreConfig:
    """Every option at KubeEdge's default (``NewDefaultEdgeCoreConfig``)."""
    return EdgeCoreConfig()


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
