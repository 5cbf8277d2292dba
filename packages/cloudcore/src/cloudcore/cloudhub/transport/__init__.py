"""cloudhub's transports: thin adapters between sockets and the session layer.

Each transport authenticates a connection, turns it into a
:class:`~cloudcore.cloudhub.handler.NodeConnection` and feeds decoded messages
to the :class:`~cloudcore.cloudhub.handler.ConnectionHandler`; frames that
cannot be decoded close that one connection.
"""
