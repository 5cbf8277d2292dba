"""TLS contexts and peer authentication shared by cloudhub's servers.

Mirrors ``cloud/pkg/cloudhub/servers/server.go`` createTLSConfig (protocol.md
3.3): the server presents the cloudcore certificate; the WebSocket server
requires a client certificate signed by the KubeEdge CA; TLS 1.2 is the
minimum and, for 1.2, only the ECDHE-ECDSA AEAD suites are allowed (the server
key is ECDSA). The HTTPS bootstrap server only *asks* for a client certificate
(rotation uses it, bootstrap uses a token instead).

Node authentication (``cloud/pkg/cloudhub/authorization/authorizer.go``) is
:func:`authenticate_node`: exactly one certificate, signed by the CA, CN
``system:node:<node_id>``. Unlike KubeEdge it is on by default.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import asyncio.sslproto
import datetime as dt
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from kecommon import certs

__all__ = [
    "TLS12_CIPHERS",
    "TLS_READ_BUFFER",
    "authenticate_node",
    "limit_tls_read_buffer",
    "server_ssl_context",
    "share_tls_read_buffer",
]

#: The TLS 1.2 suites KubeEdge allows (OpenSSL names); 1.3 suites are not restricted.
TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ]
)


#: Bytes of ciphertext asyncio reads per TLS connection at a time: one maximum
#: TLS record (16 KiB of plaintext) needs at most two reads.
TLS_READ_BUFFER = 16 * 1024


def limit_tls_read_buffer(size: int = TLS_READ_BUFFER) -> None:
    """Shrink asyncio's per-connection TLS read buffer to ``size`` bytes.

    asyncio gives every TLS connection its own read buffer of
    ``SSLProtocol.max_size`` (256 KiB), zero-filled at once and so resident:
    with thousands of idle edge nodes it was about 80 % of cloudhub's memory
    (docs/performance.md). The size only bounds how much ciphertext one
    ``recv`` takes and how much plaintext one ``SSLObject.read`` returns, so a
    smaller one changes no behaviour, only the number of reads for a large
    frame. Process-wide (the attribute is per class); never raises it.
    """
    proto = asyncio.sslproto.SSLProtocol
    if getattr(proto, "max_size", 0) > size:
        proto.max_size = size


class _SharedReadBuffers(threading.local):
    """One TLS read buffer per thread (so per event loop), by size."""

    def __init__(self) -> None:
        self.by_size: dict[int, tuple[bytearray, memoryview]] = {}

    def get(self, size: int) -> tuple[bytearray, memoryview]:
        pair = self.by_size.get(size)
        if pair is None:
            buf = bytearray(size)
            pair = self.by_size[size] = (buf, memoryview(buf))
        return pair


_shared_read_buffers = _SharedReadBuffers()


def share_tls_read_buffer(transport: asyncio.BaseTransport) -> bool:
    """Make the TLS connection under ``transport`` read into a per-thread shared buffer.

    Even at 16 KiB (:func:`limit_tls_read_buffer`), asyncio's read buffer of
    each TLS connection was the largest per-node cost left in cloudhub
    (docs/performance.md). Sharing one is safe on a selector event loop: its
    socket transport calls ``get_buffer``, ``recv_into`` and
    ``buffer_updated`` back to back, and ``buffer_updated`` first copies the
    bytes into the connection's incoming BIO, so no data lives in the buffer
    between two calls. A proactor loop (Windows) keeps the buffer across an
    overlapped read, and another implementation (uvloop) has its own SSL
    protocol: both are left alone. asyncio has no public hook for this, so
    every private attribute is checked first; when anything differs from
    what is expected, nothing is changed and False is returned (the
    connection keeps its own buffer, as before).

    Call it from the application protocol's ``connection_made`` (after the
    TLS handshake, where no read is in progress).
    """
    proto = getattr(transport, "_ssl_protocol", None)
    if not isinstance(proto, asyncio.sslproto.SSLProtocol):
        return False
    loop = getattr(proto, "_loop", None)
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return False
    own = getattr(proto, "_ssl_buffer", None)
    view = getattr(proto, "_ssl_buffer_view", None)
    if not isinstance(own, bytearray) or not isinstance(view, memoryview) or view.obj is not own:
        return False
    if not own:
        return False
    buf, shared_view = _shared_read_buffers.get(len(own))
    # setattr: typeshed does not declare these private attributes (checked above).
    setattr(proto, "_ssl_buffer", buf)  # noqa: B010
    setattr(proto, "_ssl_buffer_view", shared_view)  # noqa: B010
    return True


def server_ssl_context(
    server: certs.CertPair,
    ca_cert: x509.Certificate,
    *,
    client_cert: ssl.VerifyMode = ssl.CERT_REQUIRED,
) -> ssl.SSLContext:
    """A server context with the cloudcore cert and the KubeEdge CA as the client CA.

    ``client_cert`` is ``CERT_REQUIRED`` for the hub servers, ``CERT_OPTIONAL``
    for the HTTPS bootstrap server.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    # ssl can only load a key pair from files: write them into a private
    # directory that lives only for the load.
    with tempfile.TemporaryDirectory(prefix="cloudhub-tls-") as tmp:
        cert_file = Path(tmp) / "server.crt"
        key_file = Path(tmp) / "server.key"
        cert_file.write_bytes(certs.cert_to_pem(server.cert))
        key_file.touch(mode=0o600)
        key_file.write_bytes(certs.key_to_pem(server.key))
        ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata=certs.cert_to_der(ca_cert))
    ctx.verify_mode = client_cert
    return ctx


def authenticate_node(
    peer_certs: list[bytes],
    ca_cert: x509.Certificate,
    node_id: str,
    *,
    check_cn: bool = True,
) -> str | None:
    """Check the peer's certificate(s) for ``node_id``; return a refusal reason or None.

    ``peer_certs`` is the DER chain the client sent (leaf first). Exactly one
    certificate is allowed. With ``check_cn`` off (node authentication
    disabled) only the CA signature and validity are checked.
    """
    if not peer_certs:
        return "a client certificate signed by the KubeEdge CA is required"
    if len(peer_certs) != 1:
        return "exactly one client certificate is allowed (no intermediates)"
    try:
        cert = certs.cert_from_bytes(peer_certs[0])
    except certs.CertError as exc:
        return f"the client certificate cannot be parsed: {exc}"
    if check_cn:
        try:
            certs.verify_client_cert(cert, ca_cert, node_name=node_id)
        except certs.ClientCertRefused as exc:
            return str(exc)
        return None
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "the client certificate is not signed by the KubeEdge CA"
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return "the client certificate is outside its validity period"
    return None
