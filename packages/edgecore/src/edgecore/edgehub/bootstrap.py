"""Client certificate bootstrap and rotation (protocol.md 5.4).

Mirrors ``edge/pkg/edgehub/certificate/certmanager.go`` and
``certificate/http/http.go``:

1. A certificate on disk is used when it loads, its CN is
   ``system:node:<node>`` and it has not expired.
2. Otherwise, with the token ``<caHash>.<jwt>``: ``GET /ca.crt`` without
   verification, check ``sha256(DER) == caHash``, save the CA; make an ECDSA
   P-256 key and a CSR with KubeEdge's subject; ``GET /edge.crt`` with the CSR
   DER as body, headers ``NodeName`` and ``Authorization: Bearer <jwt>``, over
   TLS that verifies the server against the fetched CA (hostname checked);
   save cert and key; drop the token from edgecore.yaml.
3. Rotation: the same ``/edge.crt`` request authenticated by the current client
   certificate instead of the token, at a jittered 70-90 % of the lifetime.

Files are written atomically (temporary file, then rename), file 0600 and
directory 0700, narrowed further by the umask. KubeEdge declares 0622/0722
(``pkg/security/certs/io.go``) and relies on the umask to drop the group/other
write bits; :func:`kecommon.certs.write_file` always drops them, so 0600/0700 is
what a key actually gets, whatever the umask. Keys, CSRs
and the token's CA hash come from :mod:`kecommon.certs` / :mod:`kecommon.token`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import os
import random
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from edgecore.edgehub import certhttp
from edgecore.edgehub.errors import (
    BootstrapError,
    CAHashMismatch,
    CertificateExpired,
    CloudUnreachable,
    InvalidToken,
    TokenRefused,
)
from edgecore.edgehub.settings import EdgeHubSettings
from kecommon import certs

__all__ = [
    "CertInfo",
    "bootstrap",
    "cleanup_token",
    "ensure_certificates",
    "fetch_ca",
    "load_client_cert",
    "make_key_and_csr",
    "parse_token",
    "request_certificate",
    "rotate",
    "rotation_deadline",
]

log = logging.getLogger(__name__)

#: the modes certificate and key files and their directory end up with (at most;
#: the umask may narrow them): KubeEdge's 0622/0722 without group/other write,
#: which kecommon.certs.write_file clears in any case
FILE_MODE = 0o600
DIR_MODE = 0o700
#: the body of /ca.crt and /edge.crt is a single DER certificate; cap what we read
MAX_CERT_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What the hub needs to know about its client certificate."""

    not_before: dt.datetime
    not_after: dt.datetime
    common_name: str

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before


# -- token ---------------------------------------------------------------------


def parse_token(token: str) -> tuple[str, str]:
    """Split ``<caHash>.<header>.<payload>.<signature>`` into hash and JWT."""
    from kecommon import token as kctoken  # PyJWT (2 MiB): only a bootstrapping node needs it

    try:
        ca_hash, jwt = kctoken.split_token(token)
    except kctoken.TokenMalformed as exc:
        raise InvalidToken(
            f"invalid bootstrap token: {exc}; get one with `keadm gettoken`"
        ) from exc
    return ca_hash.lower(), jwt


# -- local certificate ---------------------------------------------------------


def node_common_name(node: str) -> str:
    return certs.node_common_name(node)


def load_client_cert(
    settings: EdgeHubSettings, *, now: dt.datetime | None = None
) -> CertInfo | None:
    """The certificate on disk if it is usable for ``settings.node_name``.

    Returns ``None`` when it is missing, unreadable or for another node.

    Raises:
        CertificateExpired: the certificate is valid for this node but expired.
    """
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert = x509.load_pem_x509_certificate(settings.tls_cert_file.read_bytes())
        key = serialization.load_pem_private_key(
            settings.tls_private_key_file.read_bytes(), password=None
        )
        settings.tls_ca_file.read_bytes()
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise ValueError("the private key does not match the certificate")
    except (OSError, ValueError) as exc:
        log.info("no usable client certificate for node %s: %s", settings.node_name, exc)
        return None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    if cn != node_common_name(settings.node_name):
        log.info(
            "client certificate CN %r is not %r; bootstrapping",
            cn,
            node_common_name(settings.node_name),
        )
        return None
    info = CertInfo(cert.not_valid_before_utc, cert.not_valid_after_utc, cn)
    if info.not_after <= now:
        raise CertificateExpired(
            f"the client certificate {settings.tls_cert_file} expired at "
            f"{info.not_after.isoformat()}; give edgecore a new token "
            "(edgeHub.token or the bootstrap token file) to get a new one"
        )
    return info


def make_key_and_csr(node: str) -> tuple[bytes, bytes]:
    """An ECDSA P-256 key (PEM ``EC PRIVATE KEY``) and a DER CSR with KubeEdge's subject."""
    key = certs.new_key()
    return certs.key_to_pem(key), certs.new_csr(node, key)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically, file 0600 and a new directory 0700 (less with a umask)."""
    certs.write_file(path, data, mode=FILE_MODE, dir_mode=DIR_MODE)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def der_to_pem(der: bytes) -> bytes:
    return certs.cert_to_pem(x509.load_der_x509_certificate(der))


# -- HTTPS -------------------------------------------------------------------------


def _url(http_server: str, path: str) -> str:
    base = http_server.rstrip("/")
    if "://" not in base:
        base = "https://" + base
    return base + path


async def fetch_ca(http_server: str, *, timeout: float = 30.0) -> bytes:
    """``GET /ca.crt`` with verification off (the token's hash checks it); DER bytes."""
    url = _url(http_server, "/ca.crt")
    try:
        reply = await certhttp.get(
            url, ssl_context=certhttp.insecure_context(), timeout=timeout, max_body=MAX_CERT_BODY
        )
    except (TimeoutError, OSError, ValueError) as exc:
        raise CloudUnreachable(f"cannot reach the cloud at {url}: {_why(exc)}") from exc
    body = reply.body
    if reply.status != 200:
        raise CloudUnreachable(f"GET {url} answered HTTP {reply.status}: {body[:200]!r}")
    if len(body) > MAX_CERT_BODY:
        raise BootstrapError(f"GET {url}: the CA body is larger than {MAX_CERT_BODY} bytes")
    return body


def verify_ca(ca_der: bytes, ca_hash: str) -> bytes:
    """Check the CA against the token's hash and return it as PEM."""
    from kecommon import token as kctoken

    actual = kctoken.ca_hash(ca_der)
    if not hmac.compare_digest(actual, ca_hash):
        raise CAHashMismatch(
            f"CA hash mismatch: the cloud's CA has sha256 {actual}, the token expects "
            f"{ca_hash}; the token belongs to another cloudcore or the connection is intercepted"
        )
    try:
        return der_to_pem(ca_der)
    except ValueError as exc:
        raise BootstrapError(f"the cloud's /ca.crt is not a DER certificate: {exc}") from exc


async def request_certificate(
    http_server: str,
    *,
    node: str,
    csr_der: bytes,
    ca_pem: bytes,
    jwt: str | None = None,
    client_cert: tuple[Path, Path] | None = None,
    timeout: float = 30.0,
) -> bytes:
    """``GET /edge.crt`` with the CSR; authenticated by ``jwt`` or ``client_cert``.

    The server is verified against ``ca_pem`` with hostname checking. Returns
    the issued certificate as DER.
    """
    url = _url(http_server, "/edge.crt")
    ctx = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert is not None:
        ctx.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    headers = {"NodeName": node}
    if jwt is not None:
        headers["Authorization"] = f"Bearer {jwt}"
    try:
        reply = await certhttp.get(
            url,
            ssl_context=ctx,
            timeout=timeout,
            max_body=MAX_CERT_BODY,
            headers=headers,
            body=csr_der,
        )
    except ssl.SSLCertVerificationError as exc:
        raise BootstrapError(
            f"the server at {url} does not present a certificate of the fetched CA "
            f"for this host name: {exc}"
        ) from exc
    except (TimeoutError, OSError, ValueError) as exc:
        raise CloudUnreachable(f"cannot reach the cloud at {url}: {_why(exc)}") from exc
    body, status = reply.body, reply.status
    text = body[:500].decode("utf-8", "replace").strip()
    if status in (401, 403):
        raise TokenRefused(status, text or "no reason given")
    if status != 200:
        err = BootstrapError(f"GET {url} answered HTTP {status}: {text}")
        err.retryable = status >= 500
        raise err
    try:
        x509.load_der_x509_certificate(body)
    except ValueError as exc:
        raise BootstrapError(f"GET {url}: the body is not a DER certificate: {exc}") from exc
    return body


# -- the flows ---------------------------------------------------------------------


def cleanup_token(settings: EdgeHubSettings) -> None:
    """Drop the token from edgecore.yaml (``cleanupToken``) and the bootstrap file."""
    path = settings.config_file
    if path is not None and path.is_file():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        hub = data.get("modules", {}).get("edgeHub")
        if isinstance(hub, dict) and hub.get("token"):
            hub["token"] = ""
            mode = path.stat().st_mode & 0o777
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                yaml.safe_dump(data, fh, sort_keys=False)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
            log.info("removed the bootstrap token from %s", path)
    token_file = settings.bootstrap_token_file
    if token_file is not None and token_file.is_file():
        token_file.unlink()
        log.info("removed the bootstrap token file %s", token_file)
    settings.token = ""


async def bootstrap(settings: EdgeHubSettings) -> CertInfo:
    """Get a client certificate with the token; write CA, cert and key."""
    token = settings.token_value()
    if not token:
        raise InvalidToken(
            f"node {settings.node_name} has no client certificate and no bootstrap token: "
            "set modules.edgeHub.token (from `keadm gettoken`)"
        )
    ca_hash, jwt = parse_token(token)
    log.info(
        "bootstrapping the certificate of node %s from %s", settings.node_name, settings.http_server
    )
    ca_der = await fetch_ca(settings.http_server, timeout=settings.http_timeout)
    ca_pem = verify_ca(ca_der, ca_hash)
    key_pem, csr_der = make_key_and_csr(settings.node_name)
    cert_der = await request_certificate(
        settings.http_server,
        node=settings.node_name,
        csr_der=csr_der,
        ca_pem=ca_pem,
        jwt=jwt,
        timeout=settings.http_timeout,
    )
    info = _check_issued(cert_der)
    write_private_file(settings.tls_ca_file, ca_pem)
    write_private_file(settings.tls_private_key_file, key_pem)
    write_private_file(settings.tls_cert_file, der_to_pem(cert_der))
    log.info(
        "node %s got a certificate valid until %s", settings.node_name, info.not_after.isoformat()
    )
    cleanup_token(settings)
    return info


def _check_issued(cert_der: bytes) -> CertInfo:
    cert = x509.load_der_x509_certificate(cert_der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    info = CertInfo(
        cert.not_valid_before_utc, cert.not_valid_after_utc, str(cns[0].value) if cns else ""
    )
    if info.not_after <= dt.datetime.now(dt.UTC):
        raise CertificateExpired(
            f"the cloud issued a certificate that expired at {info.not_after.isoformat()}; "
            "check the clocks of edge and cloud"
        )
    return info


async def ensure_certificates(settings: EdgeHubSettings) -> CertInfo:
    """Use the certificate on disk, or bootstrap one with the token."""
    try:
        info = load_client_cert(settings)
    except CertificateExpired:
        if not settings.token_value():
            raise
        log.warning("client certificate expired; bootstrapping again with the token")
        info = None
    if info is not None:
        return info
    return await bootstrap(settings)


def rotation_deadline(info: CertInfo, rng: random.Random | None = None) -> dt.datetime:
    """NotBefore + a jittered 70-90 % of the lifetime (``certmanager.go``)."""
    fraction = (rng or random.Random()).uniform(0.7, 0.9)  # noqa: S311 (jitter)
    return info.not_before + info.lifetime * fraction


async def rotate(settings: EdgeHubSettings) -> CertInfo:
    """Renew the client certificate, authenticated by the current one."""
    ca_pem = settings.tls_ca_file.read_bytes()
    key_pem, csr_der = make_key_and_csr(settings.node_name)
    cert_der = await request_certificate(
        settings.http_server,
        node=settings.node_name,
        csr_der=csr_der,
        ca_pem=ca_pem,
        client_cert=(settings.tls_cert_file, settings.tls_private_key_file),
        timeout=settings.http_timeout,
    )
    info = _check_issued(cert_der)
    # Each write is atomic; a crash between them leaves a key that does not
    # match the cert, which load_client_cert rejects (then the token is needed).
    write_private_file(settings.tls_private_key_file, key_pem)
    write_private_file(settings.tls_cert_file, der_to_pem(cert_der))
    log.info(
        "node %s rotated its certificate; valid until %s",
        settings.node_name,
        info.not_after.isoformat(),
    )
    return info


async def sleep_until(deadline: dt.datetime) -> None:
    delay = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)
