"""cloudcore's Prometheus metrics, served on ``commonConfig.monitorServer.bindAddress``.

The metric objects live here so every part of cloudcore increments the same
ones: the transports count connections and frames, the session/delivery layer
counts messages and queue depths. All names start with ``cloudcore_``.

Label cardinality is bounded: ``node`` labels appear only on the queue-depth
gauge (one series per connected node, removed with :func:`forget_node`);
``reason`` and ``operation`` labels take values from small fixed sets.
"""

from __future__ import annotations

import contextlib

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
    "QUEUE_DEPTH",
    "UPSTREAM_DENIED",
    "UPSTREAM_MESSAGES",
    "forget_node",
]

# -- transports (cloudhub/transport) -----------------------------------------------
CONNECTED_NODES = Gauge(
    "cloudcore_connected_nodes",
    "Edge connections accepted by the session layer and still open.",
    ["transport"],
)
CONNECTIONS_REFUSED = Counter(
    "cloudcore_connections_refused",
    "Edge connections refused before a session started (bad headers, authentication, limit).",
    ["transport", "reason"],
)
FRAMES_RECEIVED = Counter(
    "cloudcore_frames_received",
    "Upstream frames decoded into messages.",
    ["transport"],
)
FRAMES_REJECTED = Counter(
    "cloudcore_frames_rejected",
    "Upstream frames that closed their connection (malformed, too big, overflow).",
    ["transport", "reason"],
)

# -- session and delivery (cloudhub sessions) -------------------------------------
MESSAGES_SENT = Counter("cloudcore_messages_sent", "Downstream messages written to an edge.")
MESSAGES_ACKED = Counter("cloudcore_messages_acked", "Ack-required messages acknowledged.")
MESSAGES_RETRIED = Counter("cloudcore_messages_retried", "Downstream messages sent again.")
MESSAGES_DROPPED = Counter(
    "cloudcore_messages_dropped",
    "Downstream messages dropped (queue full, superseded, node gone).",
    ["reason"],
)
QUEUE_DEPTH = Gauge(
    "cloudcore_queue_depth",
    "Messages waiting in a node's downstream queue.",
    ["node", "queue"],
)
UPSTREAM_MESSAGES = Counter(
    "cloudcore_upstream_messages",
    "Upstream messages from edges, by operation.",
    ["operation"],
)
UPSTREAM_DENIED = Counter(
    "cloudcore_upstream_denied",
    "Upstream messages refused by node authorization, by operation.",
    ["operation"],
)


def forget_node(node: str) -> None:
    """Drop a node's per-node series (call when its session ends for good)."""
    for queue in ("ack", "noack"):
        with contextlib.suppress(KeyError):
            QUEUE_DEPTH.remove(node, queue)
