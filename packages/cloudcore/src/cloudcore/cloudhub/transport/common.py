"""Settings and checks shared by the WebSocket and QUIC servers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from beehive.codec import DEFAULT_MAX_SIZE

__all__ = [
    "ConnectionInfo",
    "HubServerSettings",
    "check_connection_headers",
]

# A Kubernetes node name: an RFC 1123 subdomain. It becomes part of resource
# paths (node/<id>/...), so anything else, "/" above all, is refused.
_NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_NODE_NAME = 253
_MAX_PROJECT_ID = 253


@dataclass(frozen=True, slots=True)
class HubServerSettings:
    """What a hub server (WebSocket or QUIC) needs from cloudcore.yaml.

    Attributes:
        address, port: where to listen (``cloudHub.websocket``/``quic``).
        max_frame_size: frames larger than this close the connection (1009 on
            WebSocket); KubeEdge's viaduct cap is 32 MiB.
        node_auth: require the client certificate's CN to be
            ``system:node:<node_id>`` (``cloudHub.authorization.enable``).
        write_timeout: seconds a single frame write may take before the
            connection is considered dead and closed (``cloudHub.writeTimeout``,
            which KubeEdge declares but does not use); None disables it.
        max_queue: frames read ahead per connection before reading from the
            socket pauses, so one node's flood is held back by TCP (WebSocket)
            or closes that connection (QUIC, which cannot pause a stream).
        close_timeout: WebSocket only: seconds to wait for the edge's close
            frame after cloudhub closes a connection.
        max_incoming_streams: QUIC only, informational (``cloudHub.quic.
            maxIncomingStreams``): a session uses two streams and any other
            stream closes the connection, so aioquic's own limit applies.
        idle_timeout: QUIC only, seconds.
    """

    address: str = "0.0.0.0"
    port: int = 10000
    max_frame_size: int = DEFAULT_MAX_SIZE
    node_auth: bool = True
    write_timeout: float | None = 30.0
    max_queue: int = 4
    close_timeout: float = 2.0
    max_incoming_streams: int = 10000
    idle_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """The identity a connection claims in its headers."""

    node_id: str
    project_id: str


def check_connection_headers(get: dict[str, str]) -> ConnectionInfo | str:
    """Validate the connection headers (lowercase keys); return info or a reason.

    Headers are ``node_id``, ``project_id`` and ``ConnectionUse`` (protocol.md
    3.2). Real edgecores send them canonicalized (``Node_id``,
    ``Connectionuse``); callers pass lowercase keys. KubeEdge silently never
    reads a connection without ``ConnectionUse: msg``; we refuse it.
    """
    use = get.get("connectionuse")
    if use is None:
        return "missing ConnectionUse header (must be 'msg')"
    if use != "msg":
        return f"unsupported ConnectionUse {use!r} (only 'msg' is served)"
    node_id = get.get("node_id", "")
    if not node_id:
        return "missing node_id header"
    if len(node_id) > _MAX_NODE_NAME or not _NODE_NAME.fullmatch(node_id):
        return f"node_id {node_id[:64]!r} is not a valid node name"
    project_id = get.get("project_id", "")
    if len(project_id) > _MAX_PROJECT_ID or not project_id.isprintable():
        return "project_id header is not valid"
    return ConnectionInfo(node_id=node_id, project_id=project_id)
