"""cloudcore's Prometheus metrics (served on commonConfig.monitorServer).

Defined once at import in the default registry, so every part of the process
increments the same series. Names and labels are part of our documented
interface (docs/cloudcore.md).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "CONNECTED_NODES",
    "MESSAGES_ACKED",
    "MESSAGES_DROPPED",
    "MESSAGES_RETRIED",
    "MESSAGES_SENT",
    "NODE_QUEUE_DEPTH",
    "UNAUTHORIZED_MESSAGES",
    "UPSTREAM_MESSAGES",
]

CONNECTED_NODES = Gauge("cloudhub_connected_nodes", "Edge nodes with a live session")
MESSAGES_SENT = Counter(
    "cloudhub_messages_sent_total", "Downstream messages written to edge nodes (first sends)"
)
MESSAGES_ACKED = Counter(
    "cloudhub_messages_acked_total", "Ack-required downstream messages acknowledged by the edge"
)
MESSAGES_RETRIED = Counter(
    "cloudhub_messages_retried_total", "Downstream messages resent for lack of an ack"
)
MESSAGES_DROPPED = Counter(
    "cloudhub_messages_dropped_total",
    "Downstream messages not delivered, by reason",
    ["reason"],
)
NODE_QUEUE_DEPTH = Gauge(
    "cloudhub_node_queue_depth", "Downstream messages waiting per node", ["node"]
)
UPSTREAM_MESSAGES = Counter(
    "cloudhub_upstream_messages_total", "Messages received from edge nodes", ["operation"]
)
UNAUTHORIZED_MESSAGES = Counter(
    "cloudhub_unauthorized_messages_total",
    "Upstream messages refused by node authorization, by reason",
    ["reason"],
)
