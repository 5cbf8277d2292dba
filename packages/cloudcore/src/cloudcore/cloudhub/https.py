"""The cloudhub HTTPS server on port 10002: CA download, certificate signing, node check.

Mirrors ``cloud/pkg/cloudhub/servers/httpserver/server.go``,
``certificate/certs.go`` and ``node/checknode.go`` (protocol.md 5.3):

* ``GET /ca.crt``: the CA certificate, raw DER.
* ``GET /edge.crt``: sign a node certificate. ``NodeName`` header; the body is
  a DER CSR of at most 1 MiB (``GET`` with a body, as edgecore sends it).
  Authenticated by ``Authorization: Bearer <jwt>`` (bootstrap) or by a client
  certificate from the CA with CN ``system:node:<NodeName>`` (rotation).
  Optional ``ExtKeyUsages`` header (JSON array of Go ExtKeyUsage numbers).
  Returns the DER certificate; 401 with a text reason for a bad/expired/forged
  token or client certificate; 400 for a bad CSR or header, 403 when the CSR
  names another node. Unlike KubeEdge we verify the CSR's signature and CN.
* ``GET /node/{name}``: 200 ``Node found`` / 404 ``Node not found`` / 500.
* ``GET /node/{name}/status`` (ours, not KubeEdge's): the Node's Ready condition
  as JSON ``{"ready": bool, "reason": str, "message": str}``, for ``keadm join``
  to wait on. Only the node itself may ask: it needs the client certificate of
  that node (CN ``system:node:<name>``, from the CA), 401 without one, 403 for
  another node's, 404 when there is no such Node. The answer is always that
  JSON shape, so a client can tell it from the plain 404 of a cloudcore (such
  as KubeEdge's) that lacks the route.

TLS: the cloudcore certificate, TLS >= 1.2, client certificate optional (a
certificate that does not verify against the CA fails the handshake).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cryptography.x509.oid import NameOID

from kecommon import certs, token

if TYPE_CHECKING:
    from cloudcore.cloudhub.certstore import CertStore

__all__ = ["HttpsServer", "NodeGetter", "NodeLookup", "ready_status"]

log = logging.getLogger(__name__)

#: Returns True if the node exists, False if not; raises on API trouble.
NodeLookup = Callable[[str], Awaitable[bool]]
#: Returns the Node object, or None if there is none; raises on API trouble.
NodeGetter = Callable[[str], Awaitable[dict[str, Any] | None]]


class HttpsServer:
    """The bootstrap server; ``port`` is the bound port after :meth:`start`."""

    def __init__(
        self,
        store: CertStore,
        *,
        address: str = "0.0.0.0",
        port: int = 10002,
        ssl_context: ssl.SSLContext,
        cert_days: int = 365,
        node_lookup: NodeLookup | None = None,
        node_getter: NodeGetter | None = None,
    ) -> None:
        """``node_getter`` answers ``/node/{name}/status``; by default it reads
        the Node from the API server of ``store.kube`` (one GET per request: the
        route is polled by a joining edge for a minute or two, no cache needed)."""
        self._store = store
        self._address = address
        self._port = port
        self._ssl = ssl_context
        self._cert_days = cert_days
        self._node_lookup = node_lookup
        self._node_getter = node_getter or _kube_node_getter(store)
        self._runner: web.AppRunner | None = None
        self.port = port

    def app(self) -> web.Application:
        app = web.Application(client_max_size=certs.MAX_CSR_SIZE)
        app.router.add_get("/ca.crt", self._ca)
        app.router.add_get("/edge.crt", self._edge_cert)
        app.router.add_get("/node/{name}", self._node)
        app.router.add_get("/node/{name}/status", self._node_status)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._address, self._port, ssl_context=self._ssl)
        await site.start()
        # aiohttp keeps the asyncio server here; we need its port when given 0.
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("https server listening on %s:%d", self._address, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- handlers -------------------------------------------------------------------

    async def _ca(self, request: web.Request) -> web.Response:
        return web.Response(body=self._store.ca.cert_der, content_type="application/octet-stream")

    async def _edge_cert(self, request: web.Request) -> web.Response:
        node = request.headers.get("NodeName", "")
        peer = request.remote
        if not node:
            return _text(400, "the NodeName header is missing")
        # Authenticate first, so an anonymous client learns nothing about CSRs.
        refusal = self._authenticate(request, node)
        if refusal is not None:
            log.warning("node %s from %s: /edge.crt refused: %s", node, peer, refusal)
            return _text(401, refusal)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _text(413, f"the CSR exceeds {certs.MAX_CSR_SIZE} bytes")
        try:
            usages = certs.parse_ext_key_usages(request.headers.get("ExtKeyUsages"))
            csr = certs.verify_csr(body, node)
        except certs.CsrRefused as exc:
            status = 403 if "does not match" in str(exc) else 400
            log.warning("node %s from %s: CSR refused: %s", node, peer, exc)
            return _text(status, str(exc))
        try:
            cert = certs.sign_edge_cert(self._store.ca, csr, usages=usages, days=self._cert_days)
        except certs.CertError as exc:
            log.error("node %s: signing failed: %s", node, exc)
            return _text(500, f"signing failed: {exc}")
        log.info("node %s from %s: issued certificate serial %x", node, peer, cert.serial_number)
        return web.Response(body=certs.cert_to_der(cert), content_type="application/octet-stream")

    def _authenticate(self, request: web.Request, node: str) -> str | None:
        """None if the request may get a certificate for ``node``, else the reason."""
        authorization = request.headers.get("Authorization")
        if authorization:
            try:
                self._store.verify_bearer(authorization)
            except token.TokenError as exc:
                return str(exc)
            return None
        peer = _peer_cert(request)
        if peer is None:
            return "no token (Authorization: Bearer <token>) and no client certificate"
        try:
            certs.verify_client_cert(
                certs.cert_from_bytes(peer), self._store.ca.cert, node_name=node
            )
        except certs.CertError as exc:
            return str(exc)
        return None

    async def _node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self._node_lookup is None:
            return _text(500, "no API server configured")
        try:
            found = await self._node_lookup(name)
        except Exception as exc:
            log.warning("node lookup for %s failed: %s", name, exc)
            return _text(500, f"node lookup failed: {exc}")
        return _text(200, "Node found") if found else _text(404, "Node not found")


    async def _node_status(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        der = _peer_cert(request)
        if der is None:
            return _status(401, "Unauthorized", "present the client certificate of the node")
        try:
            cert = certs.cert_from_bytes(der)
        except certs.CertError as exc:
            return _status(401, "Unauthorized", f"the client certificate: {exc}")
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(cns[0].value) if len(cns) == 1 else ""
        asker = cn.removeprefix(certs.NODE_CN_PREFIX)
        if not cn.startswith(certs.NODE_CN_PREFIX) or not asker:
            return _status(401, "Unauthorized", f"the client certificate CN {cn!r} names no node")
        try:
            certs.verify_client_cert(cert, self._store.ca.cert, node_name=asker)
        except certs.CertError as exc:
            return _status(401, "Unauthorized", str(exc))
        if asker != name:
            # A node may watch its own status, not learn about others.
            return _status(403, "Forbidden", f"node {asker} may not read the status of {name}")
        if self._node_getter is None:
            return _status(500, "NoAPIServer", "no API server configured")
        try:
            node = await self._node_getter(name)
        except Exception as exc:
            log.warning("node status lookup for %s failed: %s", name, exc)
            return _status(500, "LookupFailed", f"node lookup failed: {exc}")
        if node is None:
            return _status(404, "NodeNotFound", f"node {name} is not registered (yet)")
        ready, reason, message = ready_status(node)
        return web.json_response({"ready": ready, "reason": reason, "message": message})


def ready_status(node: dict[str, Any]) -> tuple[bool, str, str]:
    """(ready, reason, message) of the Node's Ready condition."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return (
                cond.get("status") == "True",
                str(cond.get("reason") or ""),
                str(cond.get("message") or ""),
            )
    return False, "NotReported", "the node has not reported a Ready condition yet"


def _kube_node_getter(store: CertStore) -> NodeGetter | None:
    kube = getattr(store, "kube", None)
    if kube is None:
        return None

    async def get(name: str) -> dict[str, Any] | None:
        from kubeclient import NODES, NotFound

        try:
            node: dict[str, Any] = await kube.get(NODES, name)
        except NotFound:
            return None
        return node

    return get


def _status(status: int, reason: str, message: str) -> web.Response:
    return web.json_response(
        {"ready": False, "reason": reason, "message": message}, status=status
    )


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


def _peer_cert(request: web.Request) -> bytes | None:
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return der if der else None
