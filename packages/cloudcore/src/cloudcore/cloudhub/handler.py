"""The seam between cloudhub's transports and its session layer.

Two Protocols live here (the contract between the ``cloudhub-transport`` and
``cloudhub-delivery`` parts, see the brief):

* :class:`NodeConnection` is what a transport (WebSocket or QUIC server) hands
  over for each authenticated edge connection: the node identity taken from the
  connection (``node_id`` header, checked against the client certificate's CN),
  and ``write``/``close``.
* :class:`ConnectionHandler` is what the transports call: ``on_connect`` once the
  connection is authenticated, ``on_message`` for every decoded upstream frame,
  ``on_disconnect`` exactly once when the connection is gone (for whatever
  reason, including a close we asked for).

The implementation of :class:`ConnectionHandler` is
:class:`cloudcore.cloudhub.sessions.SessionManager` (re-exported here). How the
transport module wires it (``cloudcore/cloudhub/module.py``)::

    from cloudcore.cloudhub.handler import SessionManager, SessionSettings

    manager = SessionManager(
        SessionSettings.from_cloudhub_config(cfg.modules.cloud_hub),
        kube=kube_client,            # kubeclient.KubeClient, or None (no ObjectSync)
        cluster_ca=cluster_ca_der,   # bytes | None: answer for ``k8s/ca.crt``
    )
    # in CloudHub.start(ctx):
    pump = asyncio.create_task(manager.run(ctx), name="cloudhub-downstream")
    await manager.wait_ready()       # then start the servers
    # the WS / QUIC servers get ``manager`` as their ConnectionHandler
    # in CloudHub.cleanup():
    await manager.close()            # closes every session (code 1001), idempotent

``run(ctx)`` is the downstream pump: it takes every message sent to the beehive
module ``cloudhub`` (``ctx.receive("cloudhub")``), routes it by the
``node/<node>/`` prefix of its resource to that node's session, and runs until
cancelled. It also uses ``ctx`` to publish upstream messages (protocol.md 4.1)
and the ``connected``/``disconnected`` notices (3.8), so the module must call
``run`` before the servers accept connections (``on_connect`` before ``run``
refuses the connection with "cloudhub is not ready").

Contract details the transports rely on:

* ``on_connect`` returns False to refuse (node limit reached, not ready); the
  manager has then already called ``conn.close(code, reason)``.
* A second connection for the same node replaces the first: the manager closes
  the old one with code 4000 and reason "replaced by a new connection"; the
  transport must still call ``on_disconnect`` for the old one (the manager
  ignores a disconnect for a connection that is no longer current).
* ``on_message`` never raises for bad content: a message the node may not send
  is answered with an ``error`` response, a malformed resource is logged and
  dropped. Frames that cannot be decoded are the transport's business (close
  that connection).
* ``conn.write`` raising ``ConnectionError`` ends the session; the manager then
  closes the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from beehive.message import Message

if TYPE_CHECKING:
    from cloudcore.cloudhub.sessions import SessionManager, SessionSettings

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_KEEPALIVE_TIMEOUT",
    "CLOSE_NODE_DELETED",
    "CLOSE_NODE_LIMIT",
    "CLOSE_NOT_READY",
    "CLOSE_REPLACED",
    "CLOSE_WRITE_FAILED",
    "ConnectionHandler",
    "NodeConnection",
    "SessionManager",
    "SessionSettings",
]

# Close codes the session layer uses (the WebSocket private range 4000-4999;
# the QUIC transport maps them onto its application error codes).
CLOSE_GOING_AWAY = 1001
CLOSE_REPLACED = 4000
CLOSE_NODE_LIMIT = 4001
CLOSE_KEEPALIVE_TIMEOUT = 4002
CLOSE_NODE_DELETED = 4003
CLOSE_NOT_READY = 4004
CLOSE_WRITE_FAILED = 4005


@runtime_checkable
class NodeConnection(Protocol):
    """One authenticated edge connection; implemented by the transports."""

    node_id: str
    project_id: str
    transport: str  # "websocket" | "quic"

    async def write(self, msg: Message) -> None:
        """Send one message as one frame; raises ConnectionError when closed."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the connection with a reason; idempotent."""
        ...


@runtime_checkable
class ConnectionHandler(Protocol):
    """What the transports call; implemented by the session manager."""

    async def on_connect(self, conn: NodeConnection) -> bool:
        """A node connected; False refuses it (the handler closed it already)."""
        ...

    async def on_message(self, conn: NodeConnection, msg: Message) -> None:
        """One decoded upstream message from ``conn``."""
        ...

    async def on_disconnect(self, conn: NodeConnection, reason: str) -> None:
        """``conn`` is gone; called exactly once per connection."""
        ...


def __getattr__(name: str) -> Any:
    # Lazy re-export: sessions imports this module, so a plain import at the
    # top would be circular.
    if name in ("SessionManager", "SessionSettings"):
        from cloudcore.cloudhub import sessions

        return getattr(sessions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
