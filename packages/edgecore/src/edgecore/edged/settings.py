"""edged's settings: every interval, timeout and limit has a name here.

:meth:`EdgedSettings.from_config` maps KubeEdge's ``modules.edged`` keys
(``hostnameOverride``, ``nodeIP``, ``nodeLabels``, ``podSandboxImage``,
``rootDirectory``, ``tailoredKubeletConfig.containerRuntimeEndpoint`` /
``nodeStatusUpdateFrequency`` / ``nodeLeaseDurationSeconds`` / ``maxPods``);
the rest are our own, with kubelet's values as defaults.
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
        node_status_update_frequency: node status patch period (``nodeStatusUpdateFrequency``).
        node_lease_duration: lease duration in seconds; the lease is renewed every quarter of it.
        max_pods: the ``pods`` capacity reported (``maxPods``).
        backoff_initial / backoff_max: crash-loop back-off (kubelet: 10 s, 5 min).
        max_concurrent_syncs: pod workers allowed to run at once.
        default_grace_period: used when a pod says nothing.
        image_pull_progress_interval: how often a running pull is logged.
        probe_timeout_default: ExecSync/HTTP/TCP probe timeout when the probe has none.
        cri: CRI call deadlines.
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
    node_lease_duration: int = 40
    max_pods: int = 110
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    max_concurrent_syncs: int = 8
    default_grace_period: int = 30
    image_pull_progress_interval: float = 5.0
    probe_timeout_default: int = 1
    cri: CRITimeouts = field(default_factory=CRITimeouts)

    @property
    def pods_dir(self) -> Path:
        return self.root_directory / "pods"

    @property
    def logs_dir(self) -> Path:
        return self.root_directory / "pod-logs"

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> EdgedSettings:
        """Build from an ``EdgeCoreConfig`` (kecommon.config) ``modules.edged`` section."""
        edged = cfg.modules.edged
        kubelet = getattr(edged, "tailored_kubelet_config", None)
        values: dict[str, Any] = {}
        if getattr(edged, "hostname_override", None):
            values["node_name"] = edged.hostname_override
        if getattr(edged, "node_ip", None):
            values["node_ip"] = edged.node_ip
        if getattr(edged, "node_labels", None):
            values["node_labels"] = dict(edged.node_labels)
        if getattr(edged, "pod_sandbox_image", None):
            values["pod_sandbox_image"] = edged.pod_sandbox_image
        if getattr(edged, "root_directory", None):
            values["root_directory"] = Path(edged.root_directory)
        if getattr(edged, "register_node_namespace", None):
            values["register_node_namespace"] = edged.register_node_namespace
        if kubelet is not None:
            if getattr(kubelet, "container_runtime_endpoint", None):
                values["runtime_endpoint"] = kubelet.container_runtime_endpoint
            freq = getattr(kubelet, "node_status_update_frequency", None)
            if freq:
                values["node_status_update_frequency"] = _seconds(freq)
            lease = getattr(kubelet, "node_lease_duration_seconds", None)
            if lease:
                values["node_lease_duration"] = int(lease)
            if getattr(kubelet, "max_pods", None):
                values["max_pods"] = int(kubelet.max_pods)
        values.update(overrides)
        return cls(**values)


def _seconds(value: Any) -> float:
    """``10s`` / ``1m30s`` / ``500ms`` / a number / a timedelta, in seconds."""
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    total, num = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = "ms" if text[i : i + 2] == "ms" else ch
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        total += float(num)
    return total
