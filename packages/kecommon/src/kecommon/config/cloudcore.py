"""``cloudcore.yaml``: the CloudCore config, keys and defaults as KubeEdge's.

Mirrors ``staging/src/github.com/kubeedge/api/apis/componentconfig/cloudcore/v1alpha1/types.go``
and ``default.go`` (protocol.md sections 3.1, 3.7 and 9.1). Attribute names
are snake_case; the YAML keys are KubeEdge's.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field

from kecommon.config.base import KEModel, PathStr, aliases
from kecommon.config.host import local_ip

__all__ = [
    "CLOUDCORE_API_VERSION",
    "CLOUDCORE_API_VERSIONS",
    "CLOUDCORE_KIND",
    "AuthorizationMode",
    "CloudCoreConfig",
    "CloudCoreModules",
    "CloudHub",
    "CloudHubAuthorization",
    "CloudHubHTTPS",
    "CloudHubQuic",
    "CloudHubUnixSocket",
    "CloudHubWebSocket",
    "CloudStream",
    "CommonConfig",
    "DeviceController",
    "DynamicController",
    "EdgeController",
    "IptablesManager",
    "KubeAPIConfig",
    "MonitorServer",
    "NodeAuthorization",
    "Router",
    "SyncController",
    "TaskManager",
]

CLOUDCORE_API_VERSION = "cloudcore.config.kubeedge.io/v1alpha1"
#: The code says v1alpha1; the Helm chart writes v1alpha2. KubeEdge checks neither.
CLOUDCORE_API_VERSIONS = (CLOUDCORE_API_VERSION, "cloudcore.config.kubeedge.io/v1alpha2")
CLOUDCORE_KIND = "CloudCore"

DEFAULT_NODE_LIMIT = 500
DEFAULT_CA_FILE = "/etc/kubeedge/ca/rootCA.crt"
DEFAULT_CA_KEY_FILE = "/etc/kubeedge/ca/rootCA.key"
DEFAULT_CERT_FILE = "/etc/kubeedge/certs/server.crt"
DEFAULT_KEY_FILE = "/etc/kubeedge/certs/server.key"

Port = Annotated[int, Field(ge=0, le=65535)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
PositiveInt32 = Annotated[int, Field(ge=0, le=2**31 - 1)]


class MonitorServer(KEModel):
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset({"enableProfiling"})

    #: host:port of the Prometheus metrics endpoint.
    bind_address: str = "127.0.0.1:9091"
    enable_profiling: bool = False


class CommonConfig(KEModel):
    # The tunnel port belongs to cloudStream, which we do not have.
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset({"tunnelPort"})

    tunnel_port: Port = 10350
    monitor_server: MonitorServer = Field(default_factory=MonitorServer)


class KubeAPIConfig(KEModel):
    model_config = ConfigDict(alias_generator=aliases({"qps": "qps"}))
    # We speak JSON to the API server whatever this says.
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset({"contentType"})

    #: API server URL; overrides the one in ``kube_config`` when set.
    master: str = ""
    content_type: str = "application/vnd.kubernetes.protobuf"
    qps: PositiveInt32 = 5 * DEFAULT_NODE_LIMIT
    burst: PositiveInt32 = 10 * DEFAULT_NODE_LIMIT
    #: kubeconfig file; empty means the in-cluster service account.
    kube_config: PathStr = ""


class CloudHubQuic(KEModel):
    """QUIC server. Ours is IETF QUIC (docs/protocol-quic.md), not KubeEdge's gQUIC."""

    enable: bool = False
    address: str = "0.0.0.0"
    port: Port = 10001
    max_incoming_streams: PositiveInt32 = 10000


class CloudHubUnixSocket(KEModel):
    """The CSI socket; we have no CSI driver."""

    IMPLEMENTED: ClassVar[bool] = False

    enable: bool = True
    address: str = "unix:///var/lib/kubeedge/kubeedge.sock"


class CloudHubWebSocket(KEModel):
    enable: bool = True
    address: str = "0.0.0.0"
    port: Port = 10000


class CloudHubHTTPS(KEModel):
    """The certificate bootstrap server (protocol.md 5.3)."""

    enable: bool = True
    address: str = "0.0.0.0"
    port: Port = 10002


class NodeAuthorization(KEModel):
    enable: bool = True


class AuthorizationMode(KEModel):
    node: NodeAuthorization | None = None


def _default_modes() -> list[AuthorizationMode]:
    return [AuthorizationMode(node=NodeAuthorization(enable=True))]


class CloudHubAuthorization(KEModel):
    """Connection authorization (protocol.md 3.3); enforced when ``enable`` and not ``debug``."""

    enable: bool = False
    debug: bool = True
    modes: list[AuthorizationMode] = Field(default_factory=_default_modes)


def _default_advertise_address() -> list[str]:
    return [local_ip()]


def _default_dns_names() -> list[str]:
    return [""]


class CloudHub(KEModel):
    model_config = ConfigDict(
        alias_generator=aliases(
            {
                "tls_ca_file": "tlsCAFile",
                "tls_ca_key_file": "tlsCAKeyFile",
                "unix_socket": "unixsocket",
                "https": "https",
                "websocket": "websocket",
                "quic": "quic",
            }
        )
    )
    # KubeEdge never reads writeTimeout either (protocol.md 3.4).
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset({"writeTimeout"})

    enable: bool = True
    #: Seconds without an upstream keepalive before a node's session ends.
    keepalive_interval: PositiveInt32 = 30
    #: Most edge nodes connected at once; more are refused.
    node_limit: PositiveInt32 = DEFAULT_NODE_LIMIT
    tls_ca_file: PathStr = DEFAULT_CA_FILE
    tls_ca_key_file: PathStr = DEFAULT_CA_KEY_FILE
    tls_cert_file: PathStr = DEFAULT_CERT_FILE
    tls_private_key_file: PathStr = DEFAULT_KEY_FILE
    write_timeout: PositiveInt32 = 30
    quic: CloudHubQuic = Field(default_factory=CloudHubQuic)
    unix_socket: CloudHubUnixSocket = Field(default_factory=CloudHubUnixSocket)
    websocket: CloudHubWebSocket = Field(default_factory=CloudHubWebSocket)
    https: CloudHubHTTPS = Field(default_factory=CloudHubHTTPS)
    #: IPs put in the server certificate's SANs and told to the edges; required.
    advertise_address: list[str] = Field(default_factory=_default_advertise_address)
    dns_names: list[str] = Field(default_factory=_default_dns_names)
    #: Validity of signed edge certificates, in days.
    edge_cert_signing_duration: PositiveInt32 = 365
    #: How often the join token is rotated, in hours; must be > 0.
    token_refresh_duration: PositiveInt32 = 12
    authorization: CloudHubAuthorization = Field(default_factory=CloudHubAuthorization)


class EdgeControllerBuffer(KEModel):
    """Go channel sizes (``getDefaultEdgeControllerBuffer``); kept for compatibility."""

    process_event: PositiveInt32 = 0
    update_pod_status: PositiveInt32 = 1024
    update_node_status: PositiveInt32 = 1024
    query_config_map: PositiveInt32 = 1024
    query_secret: PositiveInt32 = 1024
    pod_event: PositiveInt32 = 1
    config_map_event: PositiveInt32 = 1
    secret_event: PositiveInt32 = 1
    rules_event: PositiveInt32 = 1
    rule_endpoints_event: PositiveInt32 = 1
    query_persistent_volume: PositiveInt32 = 1024
    query_persistent_volume_claim: PositiveInt32 = 1024
    query_volume_attachment: PositiveInt32 = 1024
    create_node: PositiveInt32 = 1024
    patch_node: PositiveInt32 = 1024 + DEFAULT_NODE_LIMIT // 2
    query_node: PositiveInt32 = 1024 + DEFAULT_NODE_LIMIT
    update_node: PositiveInt32 = 1024
    patch_pod: PositiveInt32 = 1024
    delete_pod: PositiveInt32 = 1024
    create_lease: PositiveInt32 = 1024 + DEFAULT_NODE_LIMIT
    query_lease: PositiveInt32 = 1024
    service_account_token: PositiveInt32 = 1024
    create_pod: PositiveInt32 = 1024
    certificate_signing_request: PositiveInt32 = 1024


class EdgeControllerLoad(KEModel):
    """Go worker counts (``getDefaultEdgeControllerLoad``); kept for compatibility."""

    # Three keys really are capitalised in KubeEdge's struct tags.
    model_config = ConfigDict(
        alias_generator=aliases(
            {
                "update_rule_status_workers": "UpdateRuleStatusWorkers",
                "service_account_token_workers": "ServiceAccountTokenWorkers",
                "create_pod_works": "CreatePodWorks",
            }
        )
    )

    process_event_workers: PositiveInt32 = 0
    update_pod_status_workers: PositiveInt32 = 1
    update_node_status_workers: PositiveInt32 = 1
    query_config_map_workers: PositiveInt32 = 100
    query_secret_workers: PositiveInt32 = 100
    query_persistent_volume_workers: PositiveInt32 = 4
    query_persistent_volume_claim_workers: PositiveInt32 = 4
    query_volume_attachment_workers: PositiveInt32 = 4
    create_node_workers: PositiveInt32 = 100
    patch_node_workers: PositiveInt32 = 100 + DEFAULT_NODE_LIMIT // 50
    query_node_workers: PositiveInt32 = DEFAULT_NODE_LIMIT
    update_node_workers: PositiveInt32 = 4
    patch_pod_workers: PositiveInt32 = 100
    delete_pod_workers: PositiveInt32 = 100
    create_lease_workers: PositiveInt32 = DEFAULT_NODE_LIMIT
    query_lease_workers: PositiveInt32 = 100
    update_rule_status_workers: PositiveInt32 = 4
    service_account_token_workers: PositiveInt32 = 100
    create_pod_works: PositiveInt32 = 4
    certificate_signing_request_workers: PositiveInt32 = 4


class EdgeController(KEModel):
    # Go's channel sizes and worker counts; our controllers size themselves.
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset({"buffer", "load"})

    enable: bool = True
    #: Seconds between node status checks.
    node_update_frequency: PositiveInt32 = 10
    #: kubeedge-py: seconds a node may stay silent (disconnected, or no lease renewal
    #: nor status) before its Ready condition turns Unknown; kube-controller-manager's
    #: ``--node-monitor-grace-period``, which devkube does not run.
    node_monitor_grace_period: PositiveInt32 = 40
    buffer: EdgeControllerBuffer = Field(default_factory=EdgeControllerBuffer)
    load: EdgeControllerLoad = Field(default_factory=EdgeControllerLoad)


class DeviceControllerBuffer(KEModel):
    model_config = ConfigDict(
        alias_generator=aliases({"update_device_states": "updateDeviceStatus"})
    )

    update_device_twins: PositiveInt32 = 1024
    update_device_states: PositiveInt32 = 1024
    device_event: PositiveInt32 = 1
    device_model_event: PositiveInt32 = 1
    device_status_event: PositiveInt32 = 0


class DeviceControllerLoad(KEModel):
    update_device_status_workers: PositiveInt32 = 1


class DeviceController(KEModel):
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset({"buffer", "load"})

    enable: bool = True
    buffer: DeviceControllerBuffer = Field(default_factory=DeviceControllerBuffer)
    load: DeviceControllerLoad = Field(default_factory=DeviceControllerLoad)


class TaskManager(KEModel):
    IMPLEMENTED: ClassVar[bool] = False
    KUBEEDGE_KEYS: ClassVar[frozenset[str]] = frozenset({"buffer", "load"})

    enable: bool = False


class SyncController(KEModel):
    enable: bool = True


class DynamicController(KEModel):
    IMPLEMENTED: ClassVar[bool] = False

    enable: bool = False


class CloudStream(KEModel):
    IMPLEMENTED: ClassVar[bool] = False
    model_config = ConfigDict(
        alias_generator=aliases(
            {
                "tls_tunnel_ca_file": "tlsTunnelCAFile",
                "tls_stream_ca_file": "tlsStreamCAFile",
            }
        )
    )

    enable: bool = False
    tls_tunnel_ca_file: PathStr = DEFAULT_CA_FILE
    tls_tunnel_cert_file: PathStr = DEFAULT_CERT_FILE
    tls_tunnel_private_key_file: PathStr = DEFAULT_KEY_FILE
    tunnel_port: Port = 10004
    tls_stream_ca_file: PathStr = "/etc/kubeedge/ca/streamCA.crt"
    tls_stream_cert_file: PathStr = "/etc/kubeedge/certs/stream.crt"
    tls_stream_private_key_file: PathStr = "/etc/kubeedge/certs/stream.key"
    stream_port: Port = 10003


class Router(KEModel):
    IMPLEMENTED: ClassVar[bool] = False

    enable: bool = False
    address: str = "0.0.0.0"
    port: Port = 9443
    rest_timeout: PositiveInt32 = 60


class IptablesManager(KEModel):
    IMPLEMENTED: ClassVar[bool] = False

    enable: bool = True
    mode: Literal["internal", "external"] = "internal"


class CloudCoreModules(KEModel):
    # Newer KubeEdge releases add these modules; accept their sections.
    KUBEEDGE_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"imagePrePullController", "nodeUpgradeJobController", "policyController"}
    )

    cloud_hub: CloudHub = Field(default_factory=CloudHub)
    edge_controller: EdgeController = Field(default_factory=EdgeController)
    device_controller: DeviceController = Field(default_factory=DeviceController)
    task_manager: TaskManager = Field(default_factory=TaskManager)
    sync_controller: SyncController = Field(default_factory=SyncController)
    dynamic_controller: DynamicController = Field(default_factory=DynamicController)
    cloud_stream: CloudStream = Field(default_factory=CloudStream)
    router: Router = Field(default_factory=Router)
    iptables_manager: IptablesManager = Field(default_factory=IptablesManager)


class CloudCoreConfig(KEModel):
    """The whole ``cloudcore.yaml``."""

    model_config = ConfigDict(alias_generator=aliases({"kube_api_config": "kubeAPIConfig"}))

    api_version: str = CLOUDCORE_API_VERSION
    kind: str = CLOUDCORE_KIND
    common_config: CommonConfig = Field(default_factory=CommonConfig)
    kube_api_config: KubeAPIConfig = Field(default_factory=KubeAPIConfig)
    modules: CloudCoreModules = Field(default_factory=CloudCoreModules)
    feature_gates: dict[str, bool] = Field(default_factory=dict)
