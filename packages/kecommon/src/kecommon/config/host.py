"""The host facts KubeEdge's defaults are made of: its IP and its name.

KubeEdge fills ``advertiseAddress`` and the edge's server addresses with the
IP of the interface that carries the default route (``util.GetLocalIP`` via
``utilnet.ChooseHostInterface``). We find the same address by asking the
kernel which source address it would use for an outside destination: a UDP
``connect`` only consults the routing table and sends nothing, so this works
offline. Without a default route we fall back to 127.0.0.1.
"""

from __future__ import annotations

import functools
import ipaddress
import socket

__all__ = ["hostname", "local_ip"]

# Any routable address works; nothing is sent to it.
_PROBE_V4 = ("192.0.2.1", 9)  # TEST-NET-1 (RFC 5737)
_FALLBACK_IP = "127.0.0.1"


@functools.cache
def local_ip() -> str:
    """The host's primary IPv4 address, or 127.0.0.1 when it has none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(_PROBE_V4)
            address = str(sock.getsockname()[0])
    except OSError:
        return _FALLBACK_IP
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return _FALLBACK_IP
    if ip.is_unspecified:
        return _FALLBACK_IP
    return address


@functools.cache
def hostname() -> str:
    """The host name as KubeEdge's ``util.GetHostname`` gives it: lower case.

    A node name must be a DNS-1123 subdomain, so upper case would be refused.
    """
    name = socket.gethostname().strip().lower()
    return name or "localhost"
