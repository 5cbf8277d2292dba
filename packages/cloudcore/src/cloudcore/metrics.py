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

import weakref
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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


class QueueDepthSource(Protocol):
    """What reports per-node queue depths (cloudhub's session manager)."""

    def queue_depths(self) -> Iterable[tuple[str, int]]: ...


class NodeQueueDepth(Collector):
    """``cloudhub_node_queue_depth{node}``, read from the live sessions when scraped.

    A Gauge child per node cost about 740 bytes for every connected node
    (docs/performance.md); this keeps none, and reports each connected node's
    current depth rather than the one at its writer's last idle moment.
    """

    NAME = "cloudhub_node_queue_depth"
    DOC = "Downstream messages waiting per node."

    def __init__(self) -> None:
        self._sources: weakref.WeakSet[QueueDepthSource] = weakref.WeakSet()

    def add_source(self, source: QueueDepthSource) -> None:
        """Report ``source``'s nodes (for as long as it is alive)."""
        self._sources.add(source)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.NAME, self.DOC, labels=["node"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.NAME, self.DOC, labels=["node"])
        for source in list(self._sources):
            for node, depth in source.queue_depths():
                family.add_metric([node], depth)
        yield family


NODE_QUEUE_DEPTH = NodeQueueDepth()
REGISTRY.register(NODE_QUEUE_DEPTH)
UPSTREAM_MESSAGES = Counter(
    "cloudhub_upstream_messages_total", "Messages received from edge nodes.", ["operation"]
)
UNAUTHORIZED_MESSAGES = Counter(
    "cloudhub_unauthorized_messages_total",
    "Upstream messages refused by node authorization, by reason.",
    ["reason"],
)
