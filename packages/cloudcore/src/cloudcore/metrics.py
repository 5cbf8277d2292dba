"""cloudcore's Prometheus metrics, served on ``commonConfig.monitorServer.bindAddress``.

Defined once at import in the default registry, so every part of the process
increments the same series: the transports count connections and frames, the
session/delivery layer counts messages and queue depths. Names and labels are
part of our documented interface (docs/cloudcore.md, "Metrics").

Label cardinality is bounded: ``node`` labels appear only on the queue-depth
gauge (one series per connected node, removed when its session ends);
``reason``, ``transport`` and ``operation`` take values from small fixed sets.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "CONNECTED_NODES",
    "CONNECTIONS_REFUSED",
    "FRAMES_RECEIVED",
    "FRAMES_REJECTED",
    "MESSAGES_ACKED",
    "MESSAGES_DROPPED",
    "MESSAGES_RETRIED",
    "MESSAGES_SENT",
    "NODE_QUEUE_DEPTH",
    "OPEN_CONNECTIONS",
    "UNAUTHORIZED_MESSAGES",
    "UPSTREAM_MESSAGES",
]

# -- transports (cloudhub/transport) -----------------------------------------------
OPEN_CONNECTIONS = Gauge(
    "cloudhub_open_connections",
    "Edge connections accepted by a transport and still open.",
    ["transport"],
)
CONNECTIONS_REFUSED = Counter(
    "cloudhub_connections_refused_total",
    "Edge connections refused before a session started (bad headers, authentication, limit).",
    ["transport", "reason"],
)
FRAMES_RECEIVED = Counter(
    "cloudhub_frames_received_total",
    "Upstream frames decoded into messages.",
    ["transport"],
)
FRAMES_REJECTED = Counter(
    "cloudhub_frames_rejected_total",
    "Upstream frames that closed their connection (malformed, too big, overflow).",
    ["transport", "reason"],
)

# -- sessions and reliable delivery (cloudhub/sessions.py) --------------------------
CONNECTED_NODES = Gauge("cloudhub_connected_nodes", "Edge nodes with a live session.")
MESSAGES_SENT = Counter(
    "cloudhub_messages_sent_total", "Downstream messages written to edge nodes (first sends)."
)
MESSAGES_ACKED = Counter(
    "cloudhub_messages_acked_total", "Ack-required downstream messages acknowledged by the edge."
)
MESSAGES_RETRIED = Counter(
    "cloudhub_messages_retried_total", "Downstream messages resent for lack of an ack."
)
MESSAGES_DROPPED = Counter(
    "cloudhub_messages_dropped_total",
    "Downstream messages not delivered, by reason.",
    ["reason"],
)
NODE_QUEUE_DEPTH = Gauge(
    "cloudhub_node_queue_depth", "Downstream messages waiting per node.", ["node"]
)
UPSTREAM_MESSAGES = Counter(
    "cloudhub_upstream_messages_total", "Messages received from edge nodes.", ["operation"]
)
UNAUTHORIZED_MESSAGES = Counter(
    "cloudhub_unauthorized_messages_total",
    "Upstream messages refused by node authorization, by reason.",
    ["reason"],
)
