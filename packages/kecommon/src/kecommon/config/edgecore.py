"""``edgecore.yaml``: the EdgeCore config, keys and defaults as KubeEdge's.

Mirrors ``staging/src/github.com/kubeedge/api/apis/componentconfig/edgecore/v1alpha2/types.go``
and ``default.go`` (protocol.md sections 3.1, 3.7 and 9.2). Attribute names
are snake_case; the YAML keys are KubeEdge's.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, model_validator

from kecommon.config.base import GoDuration, KEModel, PathStr, aliases, duration_seconds
from kecommon.config.host import hostname, local_ip

__all__ = [
    "EDGECORE_API_VERSION",
    "EDGECORE_KIND",
    "DBTest",
    "Database",
    "DeviceTwin",
    "EdgeCoreConfig",
    "EdgeCoreModules",
    "EdgeHub",
    "EdgeHubQuic",
    "EdgeHubWebSocket",
    "EdgeStream",
    "Edged",
    "EdgedBackoff",
    "EventBus",
    "EventBusTLS",
    "MetaManager",
    "MetaServer",
    "ServiceBus",
    "TailoredKubeletConfig",
    "TaskManager",
]

EDGECORE_API_VERSION = "edgecore.config.kubeedge.io/v1alpha2"
EDGECORE_KIND = "EdgeCore"

DEFAULT_CA_FILE = "/etc/kubeedge/ca/rootCA.crt"
DEFAULT_CERT_FILE = "/etc/kubeedge/certs/server.crt"
DEFAULT_KEY_FILE = "/etc/kubeedge/certs/server.key"
DEFAULT_PROJECT_ID = "e632aba927ea4ac2b575ec1603d56f10"
DEFAULT_CONTAINERD_ENDPOINT = "unix:///run/containerd/containerd.sock"

Port = Annotated[int, Field(ge=0, le=65535)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
PositiveInt32 = Annotated[int, Field(ge=0, le=2**31 - 1)]
Seconds = Annotated[float, Field(gt=0, le=86400)]


def _join_host_port(host: str, port: int) -> str:
    # net.JoinHostPort brackets IPv6 literals.
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Database(KEModel):
    driver_name: str = "sqlite3"
    alias_name: str = "default"
    #: SQLite file of the metamanager store.
    data_source: PathStr = "/var/lib/kubeedge/edgecore.db"


class TailoredKubeletConfig(KEModel):
    """KubeEdge's cut of the kubelet configuration.

    The Go struct has some eighty keys from ``KubeletConfiguration``; we model
    the ones edged uses and accept the rest unchecked (``OPEN``), keeping them
    and reporting them as not implemented.
    """

    model_config = ConfigDict(
        alias_generator=aliases(
            {
                "cluster_dns": "clusterDNS",
                "image_gc_high_threshold_percent": "imageGCHighThresholdPercent",
                "image_gc_low_threshold_percent": "imageGCLowThresholdPercent",
            }
        )
    )
    OPEN: ClassVar[bool] = True
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset(
        {"contentType", "readOnlyPort", "address"}
    )

    #: edged runs no static pods; it only warns when manifests lie here (docs/edgecore.md).
    static_pod_path: PathStr = "/etc/kubeedge/manifests"
    sync_frequency: GoDuration = "1m0s"
    address: str = "127.0.0.1"
    read_only_port: Port = 10350
    cluster_domain: str = "cluster.local"
    cluster_dns: list[str] = Field(default_factory=list)
    #: How often edged computes (and, on change, reports) node status.
    node_status_update_frequency: GoDuration = "10s"
    #: How often node status is reported when nothing changed.
    node_status_report_frequency: GoDuration = "5m0s"
    node_lease_duration_seconds: PositiveInt32 = 40
    image_gc_high_threshold_percent: Annotated[int, Field(ge=0, le=100)] = 80
    image_gc_low_threshold_percent: Annotated[int, Field(ge=0, le=100)] = 40
    cgroup_driver: str = "cgroupfs"
    max_pods: PositiveInt32 = 110
    content_type: str = "application/json"
    register_node: bool = True
    container_runtime_endpoint: str = DEFAULT_CONTAINERD_ENDPOINT
    image_service_endpoint: str = DEFAULT_CONTAINERD_ENDPOINT

    @property
    def node_status_update_seconds(self) -> float:
        return duration_seconds(self.node_status_update_frequency)

    @property
    def node_status_report_seconds(self) -> float:
        return duration_seconds(self.node_status_report_frequency)


class EdgedBackoff(KEModel):
    """kubeedge-py extension (KubeEdge has no such key): a back-off of edged.

    Starts at ``initialSeconds`` and doubles up to ``maxSeconds``; kubelet's
    crash-loop values (10 s, 5 min) are the defaults.
    """

    initial_seconds: Seconds = 10.0
    max_seconds: Seconds = 300.0

    @model_validator(mode="after")
    def _ordered(self) -> EdgedBackoff:
        if self.max_seconds < self.initial_seconds:
            raise ValueError(
                f"maxSeconds ({self.max_seconds:g}) is less than initialSeconds "
                f"({self.initial_seconds:g})"
            )
        return self


class Edged(KEModel):
    model_config = ConfigDict(alias_generator=aliases({"node_ip": "nodeIP"}))
    # TailoredKubeletFlag keys we keep without acting on them.
    KUBEEDGE_KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "runtimeCgroups",
            "windowsService",
            "windowsPriorityClass",
            "experimentalMounterPath",
            "experimentalNodeAllocatableIgnoreEvictionThreshold",
            "minimumGCAge",
            "keepTerminatedPodVolumes",
            "seccompDefault",
            "bandwidthManager",
        }
    )
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset({"reportEvent", "customInterfaceName"})

    enable: bool = True
    report_event: bool = False
    tailored_kubelet_config: TailoredKubeletConfig = Field(default_factory=TailoredKubeletConfig)
    #: The node name; KubeEdge defaults it to the lower-cased host name.
    hostname_override: str = Field(default_factory=hostname)
    #: The node's InternalIP; empty means the host's IP.
    node_ip: str = ""
    pod_sandbox_image: str = "kubeedge/pause:3.6"
    root_directory: PathStr = "/var/lib/kubelet"
    node_labels: dict[str, str] = Field(default_factory=dict)
    register_schedulable: bool = True
    max_container_count: Int32 = -1
    max_per_pod_container_count: Int32 = 1
    custom_interface_name: str = ""
    register_node_namespace: str = "default"

    # -- kubeedge-py extensions: not KubeEdge keys (KubeEdge's edged hard-codes these).
    # A real KubeEdge edgecore ignores them; ours maps them onto EdgedSettings.
    #: Crash-loop back-off of containers (and of failed image pulls), kubelet's 10 s..5 min.
    pod_backoff: EdgedBackoff = Field(default_factory=EdgedBackoff)
    #: How often the runtime is polled for container changes (containerd 1.6 sends no
    #: events; kubelet's PLEG relist period is 1 s).
    relist_interval_seconds: Seconds = 1.0
    #: Pod workers allowed to sync at once.
    max_concurrent_syncs: Annotated[int, Field(ge=1, le=1024)] = 8


def _ws_server() -> str:
    return _join_host_port(local_ip(), 10000)


def _quic_server() -> str:
    return _join_host_port(local_ip(), 10001)


def _http_server() -> str:
    return f"https://{_join_host_port(local_ip(), 10002)}"


class EdgeHubQuic(KEModel):
    """QUIC client. Ours speaks IETF QUIC (docs/protocol-quic.md)."""

    enable: bool = False
    handshake_timeout: PositiveInt32 = 30
    read_deadline: PositiveInt32 = 15
    #: cloudhub's QUIC address, host:port.
    server: str = Field(default_factory=_quic_server)
    write_deadline: PositiveInt32 = 15


class EdgeHubWebSocket(KEModel):
    enable: bool = True
    handshake_timeout: PositiveInt32 = 30
    read_deadline: PositiveInt32 = 15
    #: cloudhub's WebSocket address, host:port; the host must be in the server cert's SANs.
    server: str = Field(default_factory=_ws_server)
    write_deadline: PositiveInt32 = 15


class EdgeHub(KEModel):
    model_config = ConfigDict(
        alias_generator=aliases(
            {
                "message_qps": "messageQPS",
                "project_id": "projectID",
                "tls_ca_file": "tlsCaFile",
                "http_server": "httpServer",
                "websocket": "websocket",
                "quic": "quic",
            }
        )
    )

    enable: bool = True
    #: Seconds between keepalives to the cloud.
    heartbeat: PositiveInt32 = 15
    #: Upstream token bucket: messages per second and burst.
    message_qps: PositiveInt32 = 30
    message_burst: PositiveInt32 = 60
    project_id: str = DEFAULT_PROJECT_ID
    tls_ca_file: PathStr = DEFAULT_CA_FILE
    tls_cert_file: PathStr = DEFAULT_CERT_FILE
    tls_private_key_file: PathStr = DEFAULT_KEY_FILE
    quic: EdgeHubQuic = Field(default_factory=EdgeHubQuic)
    websocket: EdgeHubWebSocket = Field(default_factory=EdgeHubWebSocket)
    #: The join token; KubeEdge always writes the key.
    token: str = ""
    #: cloudhub's HTTPS bootstrap server, https://host:port.
    http_server: str = Field(default_factory=_http_server)
    rotate_certificates: bool = True


class EventBusTLS(KEModel):
    model_config = ConfigDict(alias_generator=aliases({"tls_mqtt_ca_file": "tlsMqttCAFile"}))

    enable: bool = False
    tls_mqtt_ca_file: PathStr = DEFAULT_CA_FILE
    tls_mqtt_cert_file: PathStr = DEFAULT_CERT_FILE
    tls_mqtt_private_key_file: PathStr = DEFAULT_KEY_FILE


class EventBus(KEModel):
    IMPLEMENTED: ClassVar[bool] = False
    model_config = ConfigDict(
        alias_generator=aliases(
            {
                "mqtt_qos": "mqttQOS",
                "mqtt_sub_client_id": "mqttSubClientID",
                "mqtt_pub_client_id": "mqttPubClientID",
                "tls": "eventBusTLS",
            }
        )
    )

    enable: bool = True
    mqtt_qos: Annotated[int, Field(ge=0, le=2)] = 0
    mqtt_retain: bool = False
    mqtt_session_queue_size: PositiveInt32 = 100
    mqtt_server_internal: str = "tcp://127.0.0.1:1884"
    mqtt_server_external: str = "tcp://127.0.0.1:1883"
    mqtt_sub_client_id: str = ""
    mqtt_pub_client_id: str = ""
    mqtt_username: str = ""
    mqtt_password: str = ""
    #: 0 internal broker, 1 both, 2 external broker.
    mqtt_mode: Annotated[int, Field(ge=0, le=2)] = 2
    tls: EventBusTLS = Field(default_factory=EventBusTLS)


def _issuers() -> list[str]:
    return ["https://kubernetes.default.svc.cluster.local"]


class MetaServer(KEModel):
    IMPLEMENTED: ClassVar[bool] = False

    enable: bool = False
    server: str = "127.0.0.1:10550"
    tls_ca_file: PathStr = DEFAULT_CA_FILE
    tls_cert_file: PathStr = DEFAULT_CERT_FILE
    tls_private_key_file: PathStr = DEFAULT_KEY_FILE
    service_account_issuers: list[str] = Field(default_factory=_issuers)
    api_audiences: list[str] = Field(default_factory=list)
    service_account_key_files: list[str] = Field(default_factory=list)
    dummy_server: str = "169.254.30.10:10550"


class MetaManager(KEModel):
    # Our metamanager always answers through edgehub.
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset({"contextSendGroup", "contextSendModule"})

    enable: bool = True
    context_send_group: str = "hub"
    context_send_module: str = "websocket"
    #: Seconds a query to the cloud may take before it fails.
    remote_query_timeout: PositiveInt32 = 60
    meta_server: MetaServer = Field(default_factory=MetaServer)


class ServiceBus(KEModel):
    IMPLEMENTED: ClassVar[bool] = False

    enable: bool = False
    server: str = "127.0.0.1"
    port: Port = 9060
    timeout: PositiveInt32 = 60
    tls_cert_file: PathStr = ""
    tls_private_key_file: PathStr = ""


class DeviceTwin(KEModel):
    IMPLEMENTED: ClassVar[bool] = False
    model_config = ConfigDict(alias_generator=aliases({"dmi_sock_path": "dmiSockPath"}))

    enable: bool = True
    dmi_sock_path: PathStr = "/etc/kubeedge/dmi.sock"


class DBTest(KEModel):
    IMPLEMENTED: ClassVar[bool] = False

    enable: bool = False


class EdgeStream(KEModel):
    IMPLEMENTED: ClassVar[bool] = False
    model_config = ConfigDict(alias_generator=aliases({"tls_tunnel_ca_file": "tlsTunnelCAFile"}))

    enable: bool = False
    tls_tunnel_ca_file: PathStr = DEFAULT_CA_FILE
    tls_tunnel_cert_file: PathStr = DEFAULT_CERT_FILE
    tls_tunnel_private_key_file: PathStr = DEFAULT_KEY_FILE
    handshake_timeout: PositiveInt32 = 30
    read_deadline: PositiveInt32 = 15
    server: str = "127.0.0.1:10004"
    write_deadline: PositiveInt32 = 15


class TaskManager(KEModel):
    IMPLEMENTED: ClassVar[bool] = False

    enable: bool = False


class EdgeCoreModules(KEModel):
    model_config = ConfigDict(alias_generator=aliases({"db_test": "dbTest"}))
    # Newer KubeEdge releases add this module; accept its section.
    KUBEEDGE_KEYS: ClassVar[frozenset[str]] = frozenset({"streamRuleEndpoint"})

    edged: Edged = Field(default_factory=Edged)
    edge_hub: EdgeHub = Field(default_factory=EdgeHub)
    event_bus: EventBus = Field(default_factory=EventBus)
    meta_manager: MetaManager = Field(default_factory=MetaManager)
    service_bus: ServiceBus = Field(default_factory=ServiceBus)
    device_twin: DeviceTwin = Field(default_factory=DeviceTwin)
    db_test: DBTest = Field(default_factory=DBTest)
    edge_stream: EdgeStream = Field(default_factory=EdgeStream)
    task_manager: TaskManager = Field(default_factory=TaskManager)


class EdgeCoreConfig(KEModel):
    """The whole ``edgecore.yaml``."""

    api_version: str = EDGECORE_API_VERSION
    kind: str = EDGECORE_KIND
    database: Database = Field(default_factory=Database)
    modules: EdgeCoreModules = Field(default_factory=EdgeCoreModules)
    feature_gates: dict[str, bool] = Field(default_factory=dict)
    #: Written by edgecore at start (KubeEdge records its version here).
    edgecore_version: str = ""
