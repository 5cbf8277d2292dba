"""Settings of edgecontroller (timeouts are named; ``None`` never applies here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["EdgeControllerSettings"]


@dataclass(frozen=True, slots=True)
class EdgeControllerSettings:
    """
    Attributes:
        cloudcore_address: value of the node annotation ``cloudcore`` set when a
            node connects or registers (KubeEdge puts cloudcore's IP there).
        node_monitor_grace_period: seconds a node may be disconnected, or
            connected without renewing its lease / posting status, before its
            Ready condition becomes Unknown (kube-controller-manager's
            ``--node-monitor-grace-period``, 40 s).
        node_check_interval: seconds between node health checks
            (KubeEdge's ``edgeController.nodeUpdateFrequency``, 10 s).
        concurrency: upstream requests handled at once (across nodes).
        cluster_ca: PEM answered to ``k8s/ca.crt`` queries; default: the CA of
            the kubeconfig cloudcore uses.
    """

    cloudcore_address: str = ""
    cluster_ca: str = ""
    node_monitor_grace_period: float = 40.0
    node_check_interval: float = 10.0
    concurrency: int = 256

    @classmethod
    def from_config(cls, config: Any) -> EdgeControllerSettings:
        """Read ``modules.edge_controller`` and cloudhub's first advertise address."""
        modules = getattr(config, "modules", None)
        ec = getattr(modules, "edge_controller", None)
        hub = getattr(modules, "cloud_hub", None)
        addresses = list(getattr(hub, "advertise_address", None) or [])
        freq = getattr(ec, "node_update_frequency", None)
        grace = getattr(ec, "node_monitor_grace_period", None)
        return cls(
            cloudcore_address=str(addresses[0]) if addresses else "",
            node_check_interval=float(freq) if freq else 10.0,
            node_monitor_grace_period=float(grace) if grace else 40.0,
        )
