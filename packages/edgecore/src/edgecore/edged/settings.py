"""edged's settings: every interval, timeout and limit has a name here.

:meth:`EdgedSettings.from_config` maps KubeEdge's ``modules.edged`` keys
(``hostnameOverride``, ``nodeIP``, ``nodeLabels``, ``podSandboxImage``,
``rootDirectory``, ``tailoredKubeletConfig.containerRuntimeEndpoint`` /
``nodeStatusUpdateFrequency`` / ``nodeLeaseDurationSeconds`` / ``maxPods``);
and our own extension keys of ``modules.edged`` (not KubeEdge's, see
docs/edgecore.md): ``podBackoff.initialSeconds`` / ``podBackoff.maxSeconds``,
``relistIntervalSeconds`` and ``maxConcurrentSyncs``. The rest are Python-only,
with kubelet's values as defaults.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecore.edged.cri import CRITimeouts

__all__ = ["EdgedSettings"]


@dataclass(frozen=True)
class EdgedSettings:
    """
    Attributes:
        node_name: the Node's name (``hostnameOverride``; default the hostname).
        node_ip: the InternalIP address reported, and the pod IP of hostNetwork pods.
        node_labels: extra labels put on the Node at registration.
        runtime_endpoint: the CRI socket (``containerRuntimeEndpoint``).
        pod_sandbox_image: the sandbox ("pause") image (``podSandboxImage``).
        root_directory: where pod dirs (volumes) and container logs live.
        relist_interval: how often the runtime is polled for container changes.
            containerd 1.6 sends no container events, so this is how a crash or
            an exit is noticed (kubelet's PLEG relist period is 1 s).
        resync_interval: every pod is synced at least this often even without change.
        node_status_update_frequency: how often node status is computed and, when it
            changed, patched (``nodeStatusUpdateFrequency``).
        node_status_report_frequency: a patch is sent at least this often
            (``nodeStatusReportFrequency``).
        node_lease_duration: lease duration in seconds; the lease is renewed every quarter of it.
        max_pods: the ``pods`` capacity reported (``maxPods``).
        kubelet_port: reported as ``daemonEndpoints.kubeletEndpoint.Port`` (``readOnlyPort``).
        register_schedulable: register the node schedulable (``registerSchedulable``).
        register_retry_initial / register_retry_max: back-off of node registration
            while the cloud is unreachable.
        backoff_initial / backoff_max: crash-loop back-off (kubelet: 10 s, 5 min).
        max_concurrent_syncs: pod workers allowed to run at once.
        default_grace_period: used when a pod says nothing.
        image_pull_progress_interval: how often a running pull is logged.
        probe_timeout_default: ExecSync/HTTP/TCP probe timeout when the probe has none.
        cri: CRI call deadlines.
        static_pod_path: ``staticPodPath``. Static pods are not supported: edged only
            warns at start when manifests lie there.
    """

    node_name: str = field(default_factory=lambda: socket.gethostname().lower())
    node_ip: str = "127.0.0.1"
    node_labels: dict[str, str] = field(default_factory=dict)
    runtime_endpoint: str = "unix:///run/containerd/containerd.sock"
    pod_sandbox_image: str = "kubeedge/pause:3.6"
    root_directory: Path = Path("/var/lib/kubelet")
    register_node_namespace: str = "default"
    relist_interval: float = 1.0
    resync_interval: float = 60.0
    node_status_update_frequency: float = 10.0
    node_status_report_frequency: float = 300.0
    node_lease_duration: int = 40
    max_pods: int = 110
    kubelet_port: int = 10350
    register_schedulable: bool = True
    register_retry_initial: float = 1.0
    register_retry_max: float = 30.0
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    max_concurrent_syncs: int = 8
    default_grace_period: int = 30
    image_pull_progress_interval: float = 5.0
    probe_timeout_default: int = 1
    cri: CRITimeouts = field(default_factory=CRITimeouts)
    static_pod_path: Path | None = None

    @property
    def pods_dir(self) -> Path:
        return self.root_directory / "pods"

    @property
    def logs_dir(self) -> Path:
        return self.root_directory / "pod-logs"

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> EdgedSettings:
        """Build from an ``EdgeCoreConfig`` (``kecommon.config``): ``modules.edged``."""
        edged = cfg.modules.edged
        kubelet = edged.tailored_kubelet_config
        node_ip = edged.node_ip
        if not node_ip:
            from kecommon.config.host import local_ip

            node_ip = local_ip()
        values: dict[str, Any] = {
            "node_name": edged.hostname_override or socket.gethostname().lower(),
            "node_ip": node_ip,
            "node_labels": dict(edged.node_labels),
            "pod_sandbox_image": edged.pod_sandbox_image,
            "root_directory": Path(edged.root_directory),
            "register_node_namespace": edged.register_node_namespace,
            "register_schedulable": edged.register_schedulable,
            "runtime_endpoint": kubelet.container_runtime_endpoint,
            "node_status_update_frequency": _seconds(kubelet.node_status_update_frequency),
            "node_status_report_frequency": _seconds(kubelet.node_status_report_frequency),
            "node_lease_duration": int(kubelet.node_lease_duration_seconds),
            "max_pods": int(kubelet.max_pods),
            "kubelet_port": int(kubelet.read_only_port),
            "resync_interval": _seconds(kubelet.sync_frequency),
            "static_pod_path": Path(kubelet.static_pod_path) if kubelet.static_pod_path else None,
            # kubeedge-py extension keys
            "backoff_initial": float(edged.pod_backoff.initial_seconds),
            "backoff_max": float(edged.pod_backoff.max_seconds),
            "relist_interval": float(edged.relist_interval_seconds),
            "max_concurrent_syncs": int(edged.max_concurrent_syncs),
        }
        values.update(overrides)
        return cls(**values)


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def static_pod_manifests(path: Path | None) -> list[Path]:
    """The files under ``staticPodPath`` that kubelet would run as static pods."""
    if path is None or not path.is_dir():
        return []
    try:
        entries = sorted(path.iterdir())
    except OSError:
        return []
    return [p for p in entries if p.suffix in MANIFEST_SUFFIXES and not p.name.startswith(".")]


def _seconds(value: Any) -> float:
    """A Go duration (``10s``, ``1m0s``) or a number, in seconds."""
    if isinstance(value, int | float):
        return float(value)
    from kecommon.config import duration_seconds

    return float(duration_seconds(str(value)))
