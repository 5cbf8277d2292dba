"""Config models: KubeEdge keys and defaults, loading rules, errors, dumping."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from kecommon.config import (
    CloudCoreConfig,
    ConfigError,
    EdgeCoreConfig,
    default_cloudcore_config,
    default_edgecore_config,
    dump_yaml,
    duration_seconds,
    load_cloudcore_config,
    load_edgecore_config,
    local_ip,
    minimal_cloudcore_config,
    minimal_edgecore_config,
    parse_cloudcore_config,
    parse_edgecore_config,
)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- defaults -----------------------------------------------------------------


def test_cloudcore_defaults_are_kubeedges() -> None:
    cfg = default_cloudcore_config()
    assert cfg.api_version == "cloudcore.config.kubeedge.io/v1alpha1"
    assert cfg.kind == "CloudCore"
    hub = cfg.modules.cloud_hub
    assert (hub.websocket.enable, hub.websocket.address, hub.websocket.port) == (
        True,
        "0.0.0.0",
        10000,
    )
    assert (hub.quic.enable, hub.quic.port, hub.quic.max_incoming_streams) == (False, 10001, 10000)
    assert (hub.https.enable, hub.https.port) == (True, 10002)
    assert hub.keepalive_interval == 30
    assert hub.node_limit == 500
    assert hub.tls_ca_file == "/etc/kubeedge/ca/rootCA.crt"
    assert hub.tls_ca_key_file == "/etc/kubeedge/ca/rootCA.key"
    assert hub.tls_cert_file == "/etc/kubeedge/certs/server.crt"
    assert hub.tls_private_key_file == "/etc/kubeedge/certs/server.key"
    assert hub.advertise_address == [local_ip()]
    assert hub.dns_names == [""]
    assert hub.edge_cert_signing_duration == 365
    assert hub.token_refresh_duration == 12
    assert hub.authorization.enable is False
    assert hub.authorization.debug is True
    assert cfg.kube_api_config.qps == 2500
    assert cfg.kube_api_config.burst == 5000
    assert cfg.kube_api_config.kube_config == ""
    assert cfg.common_config.monitor_server.bind_address == "127.0.0.1:9091"
    assert cfg.modules.edge_controller.enable and cfg.modules.sync_controller.enable
    assert not cfg.modules.cloud_stream.enable and not cfg.modules.router.enable


def test_edgecore_defaults_are_kubeedges() -> None:
    cfg = default_edgecore_config()
    assert cfg.api_version == "edgecore.config.kubeedge.io/v1alpha2"
    assert cfg.kind == "EdgeCore"
    hub = cfg.modules.edge_hub
    ip = local_ip()
    assert hub.heartbeat == 15
    assert (hub.message_qps, hub.message_burst) == (30, 60)
    assert hub.project_id == "e632aba927ea4ac2b575ec1603d56f10"
    assert hub.websocket.enable and not hub.quic.enable
    assert hub.websocket.server == f"{ip}:10000"
    assert hub.quic.server == f"{ip}:10001"
    assert hub.http_server == f"https://{ip}:10002"
    assert hub.token == ""
    assert hub.rotate_certificates is True
    assert hub.tls_ca_file == "/etc/kubeedge/ca/rootCA.crt"
    edged = cfg.modules.edged
    assert edged.hostname_override  # the host name, lower-cased
    assert edged.hostname_override == edged.hostname_override.lower()
    assert edged.pod_sandbox_image == "kubeedge/pause:3.6"
    tk = edged.tailored_kubelet_config
    assert tk.container_runtime_endpoint == "unix:///run/containerd/containerd.sock"
    assert tk.node_status_update_frequency == "10s"
    assert tk.node_status_update_seconds == 10.0
    assert cfg.modules.meta_manager.remote_query_timeout == 60
    assert cfg.database.data_source == "/var/lib/kubeedge/edgecore.db"


def test_local_ip_is_an_address() -> None:
    import ipaddress

    ipaddress.ip_address(local_ip())


# -- dump and reload ------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "parse"),
    [
        (default_cloudcore_config, parse_cloudcore_config),
        (default_edgecore_config, parse_edgecore_config),
    ],
)
def test_default_dump_reloads_to_the_same_config(make, parse) -> None:  # type: ignore[no-untyped-def]
    cfg = make()
    text = dump_yaml(cfg)
    again = parse(text)
    assert again == cfg
    assert dump_yaml(again) == text


def test_dump_uses_kubeedge_keys_sorted() -> None:
    data = yaml.safe_load(dump_yaml(default_cloudcore_config()))
    assert list(data) == sorted(data)
    hub = data["modules"]["cloudHub"]
    for key in ("tlsCAFile", "tlsCAKeyFile", "unixsocket", "advertiseAddress", "dnsNames"):
        assert key in hub
    assert "kubeAPIConfig" in data
    assert list(hub) == sorted(hub)
    edge = yaml.safe_load(dump_yaml(default_edgecore_config()))
    ehub = edge["modules"]["edgeHub"]
    for key in ("tlsCaFile", "projectID", "messageQPS", "httpServer", "token"):
        assert key in ehub
    assert "nodeIP" in edge["modules"]["edged"]
    assert "clusterDNS" in edge["modules"]["edged"]["tailoredKubeletConfig"]


def test_minimal_configs_are_small_and_load() -> None:
    text = dump_yaml(minimal_cloudcore_config(), only_set=True)
    data = yaml.safe_load(text)
    assert set(data) == {"apiVersion", "kind", "modules"}
    assert data["modules"]["cloudHub"]["nodeLimit"] == 1000
    assert parse_cloudcore_config(text).modules.cloud_hub.node_limit == 1000
    etext = dump_yaml(minimal_edgecore_config(), only_set=True)
    edata = yaml.safe_load(etext)
    assert "quic" not in edata["modules"]["edgeHub"]
    assert parse_edgecore_config(etext).modules.edge_hub.websocket.enable


# -- loading rules ----------------------------------------------------------------


def test_missing_keys_keep_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "modules:\n  cloudHub:\n    websocket:\n      port: 20000\n")
    cfg = load_cloudcore_config(path)
    assert cfg.modules.cloud_hub.websocket.port == 20000
    assert cfg.modules.cloud_hub.websocket.address == "0.0.0.0"
    assert cfg.modules.cloud_hub.https.port == 10002


def test_empty_file_is_the_default(tmp_path: Path) -> None:
    cfg = load_cloudcore_config(write(tmp_path, ""))
    assert cfg.modules.cloud_hub.websocket.port == 10000


HELM_STYLE = """\
apiVersion: cloudcore.config.kubeedge.io/v1alpha2
kind: CloudCore
kubeAPIConfig:
  kubeConfig: ""
  master: ""
modules:
  cloudHub:
    advertiseAddress:
    - 10.0.0.5
    dnsNames:
    - cloudcore.example.com
    nodeLimit: 1000
    tlsCAFile: /etc/kubeedge/ca/rootCA.crt
    unixsocket:
      address: unix:///var/lib/kubeedge/kubeedge.sock
      enable: true
    websocket:
      address: 0.0.0.0
      enable: true
      port: 10000
    quic:
      address: 0.0.0.0
      enable: false
      maxIncomingStreams: 10000
      port: 10001
    https:
      address: 0.0.0.0
      enable: true
      port: 10002
  cloudStream:
    enable: true
    streamPort: 10003
    tunnelPort: 10004
  dynamicController:
    enable: false
  router:
    enable: false
  iptablesManager:
    enable: true
    mode: external
  imagePrePullController:
    enable: false
"""


def test_a_helm_chart_config_loads_and_reports_unimplemented(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, HELM_STYLE)
    with caplog.at_level(logging.WARNING):
        cfg = load_cloudcore_config(path)
    assert cfg.api_version.endswith("/v1alpha2")
    assert cfg.modules.cloud_hub.advertise_address == ["10.0.0.5"]
    assert cfg.modules.cloud_hub.dns_names == ["cloudcore.example.com"]
    report = cfg.unimplemented()
    assert "modules.cloudStream" in report
    assert "modules.iptablesManager" in report
    assert "modules.imagePrePullController" in report
    assert "modules.router" not in report  # disabled: nothing to report
    warnings = [r for r in caplog.records if "not implemented" in r.getMessage()]
    assert len(warnings) == 1  # once, one line
    assert str(path) in warnings[0].getMessage()
    assert "modules.cloudStream" in warnings[0].getMessage()
    # kept and written back
    assert yaml.safe_load(dump_yaml(cfg))["modules"]["imagePrePullController"] == {"enable": False}


def test_report_can_be_silenced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        load_cloudcore_config(write(tmp_path, HELM_STYLE), report=False)
    assert not [r for r in caplog.records if "not implemented" in r.getMessage()]


def test_changed_tuning_knob_is_reported() -> None:
    cfg = parse_cloudcore_config(
        "modules:\n  edgeController:\n    load:\n      queryNodeWorkers: 3\n"
        "  cloudHub:\n    writeTimeout: 99\n"
    )
    report = cfg.unimplemented()
    assert "modules.edgeController.load.queryNodeWorkers" in report
    assert "modules.cloudHub.writeTimeout" in report
    assert "modules.edgeController.load.patchNodeWorkers" not in report


def test_edge_kubelet_keys_are_accepted_and_reported() -> None:
    cfg = parse_edgecore_config(
        "modules:\n  edged:\n    windowsPriorityClass: NORMAL\n"
        "    tailoredKubeletConfig:\n      evictionHard:\n        memory.available: 5%\n"
        "      nodeStatusUpdateFrequency: 1m30s\n"
    )
    report = cfg.unimplemented()
    assert "modules.edged.tailoredKubeletConfig.evictionHard" in report
    assert "modules.edged.windowsPriorityClass" in report
    assert cfg.modules.edged.tailored_kubelet_config.node_status_update_seconds == 90.0
    out = yaml.safe_load(dump_yaml(cfg))
    assert out["modules"]["edged"]["tailoredKubeletConfig"]["evictionHard"] == {
        "memory.available": "5%"
    }


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (
            "modules:\n  cloudHub:\n    websocket:\n      port: '10000'\n",
            "modules.cloudHub.websocket.port",
            "integer",
        ),
        ("modules:\n  cloudHub:\n    enable: 'yes please'\n", "modules.cloudHub.enable", "boolean"),
        (
            "modules:\n  cloudHub:\n    advertiseAddress: 10.0.0.1\n",
            "modules.cloudHub.advertiseAddress",
            "list",
        ),
        (
            "modules:\n  cloudHub:\n    websocket:\n      port: 70000\n",
            "modules.cloudHub.websocket.port",
            "65535",
        ),
        ("modules:\n  cloudHub:\n    nodeLimit: 1.5\n", "modules.cloudHub.nodeLimit", "integer"),
        ("modules:\n  cloudHub: 7\n", "modules.cloudHub", "CloudHub"),
        (
            "modules:\n  cloudHub:\n    authorization:\n      modes:\n      - node: {enable: 1}\n",
            "modules.cloudHub.authorization.modes[0].node.enable",
            "boolean",
        ),
        ("featureGates:\n  moduleRestart: maybe\n", "featureGates.moduleRestart", "boolean"),
    ],
)
def test_wrong_types_name_the_key_and_file(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_cloudcore_config(path)
    assert info.value.key == key
    assert info.value.file == str(path)
    assert str(path) in str(info.value) and key in str(info.value)
    assert words.lower() in str(info.value).lower()


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("modules:\n  cloudHub:\n    websockets: {}\n", "modules.cloudHub.websockets", "websocket"),
        ("modules:\n  cloud_hub: {}\n", "modules.cloud_hub", "cloudHub"),
        ("modules:\n  fooBar: {}\n", "modules.fooBar", None),
        ("bogus: 1\n", "bogus", None),
        (
            "modules:\n  cloudHub:\n    authorization:\n      modes:\n      - nodes: {}\n",
            "modules.cloudHub.authorization.modes[0].nodes",
            "node",
        ),
    ],
)
def test_unknown_keys_are_refused(tmp_path: Path, text: str, key: str, hint: str | None) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_cloudcore_config(path)
    assert info.value.key == key
    assert "unknown key" in str(info.value)
    assert str(path) in str(info.value)
    if hint:
        assert f"did you mean {hint!r}" in str(info.value)


def test_unknown_edge_key_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_edgecore_config("modules:\n  edgeHub:\n    heartbeats: 3\n", file="e.yaml")
    assert info.value.key == "modules.edgeHub.heartbeats"
    assert "did you mean 'heartbeat'" in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("modules:\n  cloudHub:\n    advertiseAddress: []\n", "modules.cloudHub.advertiseAddress"),
        (
            "modules:\n  cloudHub:\n    advertiseAddress: [nope]\n",
            "modules.cloudHub.advertiseAddress[0]",
        ),
        (
            "modules:\n  cloudHub:\n    tokenRefreshDuration: 0\n",
            "modules.cloudHub.tokenRefreshDuration",
        ),
        (
            "modules:\n  cloudHub:\n    websocket: {address: here}\n",
            "modules.cloudHub.websocket.address",
        ),
        ("kind: EdgeCore\n", "kind"),
        ("apiVersion: v1\n", "apiVersion"),
    ],
)
def test_cloudcore_validation(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cloudcore_config(text, file="c.yaml")
    assert info.value.key == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("modules:\n  edgeHub:\n    quic: {enable: true}\n", "modules.edgeHub"),
        ("modules:\n  edgeHub:\n    websocket: {enable: false}\n", "modules.edgeHub"),
        ("modules:\n  edgeHub:\n    heartbeat: 0\n", "modules.edgeHub.heartbeat"),
        (
            "modules:\n  edgeHub:\n    websocket: {server: nohost}\n",
            "modules.edgeHub.websocket.server",
        ),
        ("modules:\n  edged:\n    hostnameOverride: Edge_1\n", "modules.edged.hostnameOverride"),
        ("modules:\n  edged:\n    nodeIP: abc\n", "modules.edged.nodeIP"),
        (
            "modules:\n  edged:\n    tailoredKubeletConfig:\n"
            "      nodeStatusUpdateFrequency: 10x\n",
            "modules.edged.tailoredKubeletConfig.nodeStatusUpdateFrequency",
        ),
        ("kind: CloudCore\n", "kind"),
    ],
)
def test_edgecore_validation(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_edgecore_config(text, file="e.yaml")
    assert info.value.key == key


def test_quic_instead_of_websocket_is_valid() -> None:
    cfg = parse_edgecore_config(
        "modules:\n  edgeHub:\n    quic: {enable: true}\n    websocket: {enable: false}\n"
    )
    assert cfg.modules.edge_hub.quic.enable


@pytest.mark.parametrize("text", ["- a\n", "a: [\n", "just a string\n", "? [a]\n: 1\n", "1: one\n"])
def test_not_a_mapping_or_bad_yaml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_cloudcore_config(path)
    assert info.value.file == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_edgecore_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"kind: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_cloudcore_config(path)


def test_attribute_access_and_assignment_are_typed() -> None:
    cfg = CloudCoreConfig()
    cfg.modules.cloud_hub.websocket.port = 0
    assert cfg.modules.cloud_hub.websocket.port == 0
    with pytest.raises(ValueError):
        cfg.modules.cloud_hub.websocket.port = "80"  # type: ignore[assignment]
    edge = EdgeCoreConfig()
    edge.modules.edged.node_labels = {"a": "b"}
    assert edge.modules.edged.node_labels == {"a": "b"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("5m0s", 300.0),
        ("1h30m", 5400.0),
        ("0", 0.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("-2s", -2.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "10x", "1h 2m", "--1s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)


# -- YAML null, as Go's decoder reads it ------------------------------------------------------


def test_null_keeps_scalar_and_struct_defaults_and_empties_lists() -> None:
    cfg = parse_cloudcore_config(
        "modules:\n  cloudHub:\n    dnsNames:\n    websocket:\n    https:\n      port:\n"
        "    authorization:\n      modes:\n      - node:\n"
    )
    hub = cfg.modules.cloud_hub
    assert hub.dns_names == []
    assert hub.websocket.port == 10000 and hub.websocket.enable
    assert hub.https.port == 10002
    assert hub.authorization.modes[0].node is None  # a pointer in Go: null stays null
    assert parse_cloudcore_config("modules:\nfeatureGates:\n").feature_gates == {}
    assert (
        parse_edgecore_config("modules:\n  edged:\n    nodeLabels:\n").modules.edged.node_labels
        == {}
    )


def test_null_advertise_address_is_refused_as_missing() -> None:
    with pytest.raises(ConfigError) as info:
        parse_cloudcore_config("modules:\n  cloudHub:\n    advertiseAddress:\n", file="c.yaml")
    assert info.value.key == "modules.cloudHub.advertiseAddress"


HELM_RENDERED = """\
apiVersion: cloudcore.config.kubeedge.io/v1alpha2
kind: CloudCore
commonConfig:
  tunnelPort: 10350
  monitorServer:
    bindAddress: 127.0.0.1:9091
    enableProfiling: false
featureGates:
  requireAuthorization: false
kubeAPIConfig:
  burst: 200
  contentType: application/vnd.kubernetes.protobuf
  kubeConfig: ""
  master: ""
  qps: 100
modules:
  cloudHub:
    advertiseAddress:
    - 192.168.0.10
    authorization:
      debug: true
      enable: false
      modes:
      - node:
          enable: true
    dnsNames:
    - ""
    edgeCertSigningDuration: 365
    enable: true
    https:
      address: 0.0.0.0
      enable: true
      port: 10002
    keepaliveInterval: 30
    nodeLimit: 1000
    quic:
      address: 0.0.0.0
      enable: false
      maxIncomingStreams: 10000
      port: 10001
    tlsCAFile: /etc/kubeedge/ca/rootCA.crt
    tlsCAKeyFile: /etc/kubeedge/ca/rootCA.key
    tlsCertFile: /etc/kubeedge/certs/edge.crt
    tlsPrivateKeyFile: /etc/kubeedge/certs/edge.key
    tokenRefreshDuration: 12
    unixsocket:
      address: unix:///var/lib/kubeedge/kubeedge.sock
      enable: true
    websocket:
      address: 0.0.0.0
      enable: true
      port: 10000
    writeTimeout: 30
  cloudStream:
    enable: true
    streamPort: 10003
    tlsStreamCAFile: /etc/kubeedge/ca/streamCA.crt
    tlsStreamCertFile: /etc/kubeedge/certs/stream.crt
    tlsStreamPrivateKeyFile: /etc/kubeedge/certs/stream.key
    tlsTunnelCAFile: /etc/kubeedge/ca/rootCA.crt
    tlsTunnelCertFile: /etc/kubeedge/certs/server.crt
    tlsTunnelPrivateKeyFile: /etc/kubeedge/certs/server.key
    tunnelPort: 10004
  deviceController:
    enable: true
  dynamicController:
    enable: false
  edgeController:
    enable: true
    nodeUpdateFrequency: 10
  iptablesManager:
    enable: true
    mode: external
  router:
    address: 0.0.0.0
    enable: false
    port: 9443
    restTimeout: 60
  syncController:
    enable: true
  taskManager:
    enable: false
"""


def test_the_helm_charts_cloudcore_yaml_loads() -> None:
    # manifests/charts/cloudcore/templates/configmap_cloudcore.yaml, rendered with its values
    cfg = parse_cloudcore_config(HELM_RENDERED, file="configmap_cloudcore.yaml")
    hub = cfg.modules.cloud_hub
    assert hub.advertise_address == ["192.168.0.10"]
    assert hub.tls_cert_file == "/etc/kubeedge/certs/edge.crt"
    assert cfg.kube_api_config.qps == 100
    assert cfg.feature_gates == {"requireAuthorization": False}
    assert set(cfg.unimplemented()) == {
        "modules.cloudHub.unixsocket",
        "modules.cloudStream",
        "modules.iptablesManager",
    }
    # what we write back loads again to the same thing
    assert parse_cloudcore_config(dump_yaml(cfg)) == cfg


# The attribute names other parts of the project code against (the brief's interface).
CLOUDCORE_ATTRIBUTES = [
    "modules.cloud_hub.websocket.port",
    "modules.cloud_hub.websocket.address",
    "modules.cloud_hub.https.port",
    "modules.cloud_hub.quic.enable",
    "modules.cloud_hub.quic.port",
    "modules.cloud_hub.keepalive_interval",
    "modules.cloud_hub.node_limit",
    "modules.cloud_hub.tls_ca_file",
    "modules.cloud_hub.tls_ca_key_file",
    "modules.cloud_hub.tls_cert_file",
    "modules.cloud_hub.tls_private_key_file",
    "modules.cloud_hub.advertise_address",
    "modules.cloud_hub.dns_names",
    "modules.cloud_hub.edge_cert_signing_duration",
    "modules.cloud_hub.token_refresh_duration",
    "modules.cloud_hub.authorization.enable",
    "modules.edge_controller.enable",
    "modules.device_controller.enable",
    "modules.sync_controller.enable",
    "kube_api_config.kube_config",
    "kube_api_config.master",
    "common_config.monitor_server.bind_address",
]
EDGECORE_ATTRIBUTES = [
    "modules.edge_hub.heartbeat",
    "modules.edge_hub.websocket.server",
    "modules.edge_hub.quic.server",
    "modules.edge_hub.http_server",
    "modules.edge_hub.token",
    "modules.edge_hub.tls_ca_file",
    "modules.edge_hub.tls_cert_file",
    "modules.edge_hub.tls_private_key_file",
    "modules.edge_hub.project_id",
    "modules.edge_hub.message_qps",
    "modules.edge_hub.message_burst",
    "modules.edge_hub.rotate_certificates",
    "modules.edged.hostname_override",
    "modules.edged.node_ip",
    "modules.edged.node_labels",
    "modules.edged.pod_sandbox_image",
    "modules.edged.tailored_kubelet_config.container_runtime_endpoint",
    "modules.edged.tailored_kubelet_config.node_status_update_frequency",
    "modules.meta_manager.remote_query_timeout",
    "database.data_source",
]


def _resolve(obj: object, path: str) -> object:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


@pytest.mark.parametrize("path", CLOUDCORE_ATTRIBUTES)
def test_cloudcore_interface_attribute(path: str) -> None:
    assert _resolve(default_cloudcore_config(), path) is not None


@pytest.mark.parametrize("path", EDGECORE_ATTRIBUTES)
def test_edgecore_interface_attribute(path: str) -> None:
    assert _resolve(default_edgecore_config(), path) is not None


def test_path_settings_accept_pathlib_paths_in_code(tmp_path: Path) -> None:
    cfg = default_cloudcore_config()
    cfg.modules.cloud_hub.tls_ca_file = tmp_path / "ca.crt"  # type: ignore[assignment]
    assert cfg.modules.cloud_hub.tls_ca_file == str(tmp_path / "ca.crt")
    edge = default_edgecore_config()
    edge.database.data_source = tmp_path / "edge.db"  # type: ignore[assignment]
    assert parse_edgecore_config(dump_yaml(edge)).database.data_source == str(tmp_path / "edge.db")


def test_write_yaml_replaces_the_file_and_keeps_unknown_kubeedge_keys(tmp_path: Path) -> None:
    from kecommon.config import write_yaml

    path = write(tmp_path, "modules:\n  edged:\n    windowsPriorityClass: HIGH\n", "edgecore.yaml")
    cfg = load_edgecore_config(path)
    cfg.edgecore_version = "v1.23.0"
    write_yaml(cfg, path)
    again = load_edgecore_config(path)
    assert again.edgecore_version == "v1.23.0"
    assert again.modules.edged.model_extra == {"windowsPriorityClass": "HIGH"}
    assert [p.name for p in tmp_path.iterdir()] == ["edgecore.yaml"]  # no temp file left
