"""KubeEdge's certificates: the CA, the cloudcore server cert, edge CSRs and edge certs.

Pure functions on bytes and ``cryptography`` objects; the only I/O is
:func:`write_file`, kept apart at the bottom. Mirrors protocol.md section 5:

* ``pkg/security/certs/*.go`` (``NewCertificateAuthorityDer``, ``SignCerts``,
  ``io.go`` file modes) and ``cloud/pkg/cloudhub/servers/httpserver/pre_server.go``
  for the CA and the cloudcore certificate;
* ``edge/pkg/edgehub/certificate/certmanager.go`` for the edge CSR subject;
* ``cloud/pkg/cloudhub/servers/httpserver/certificate/certs.go`` for signing.

Where we are stricter than KubeEdge (it copies the CSR subject without checking
the CSR signature or its CN), :func:`verify_csr` says why a CSR is refused.
Keys are ECDSA P-256 with SEC1 DER encoding (Go's ``MarshalECPrivateKey``),
because the token's HMAC key is those exact DER bytes (section 5.2).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_COMMON_NAME",
    "CA_SERIAL",
    "CA_VALIDITY_DAYS",
    "DIR_MODE",
    "EDGE_ORGANIZATION",
    "FILE_MODE",
    "GO_EXT_KEY_USAGES",
    "MAX_CSR_SIZE",
    "CertError",
    "CertPair",
    "ClientCertRefused",
    "CsrRefused",
    "cert_from_bytes",
    "cert_to_der",
    "cert_to_pem",
    "csr_subject_cn",
    "key_from_bytes",
    "key_to_der",
    "key_to_pem",
    "new_ca",
    "new_csr",
    "new_key",
    "new_server_cert",
    "node_common_name",
    "parse_ext_key_usages",
    "sign_edge_cert",
    "verify_client_cert",
    "verify_csr",
    "write_file",
]

#: CN (and O of the cloudcore cert) KubeEdge gives its generated certificates.
CA_COMMON_NAME = "KubeEdge"
#: The generated CA's serial number (``NewCertificateAuthorityDer``).
CA_SERIAL = 1024
#: CA and cloudcore certificate lifetime: 100 x 364 days.
CA_VALIDITY_DAYS = 100 * 364
#: The O every node certificate carries.
EDGE_ORGANIZATION = "system:nodes"
#: The CN prefix of node certificates; the rest is the node name.
NODE_CN_PREFIX = "system:node:"
#: ``/edge.crt`` bodies are capped at 1 MiB, as in KubeEdge.
MAX_CSR_SIZE = 1024 * 1024
#: KubeEdge's file modes (``pkg/security/certs/io.go``). Like Go's ``os.WriteFile``
#: they go through the process umask, so with the usual 022 they become 0600/0700.
FILE_MODE = 0o622
DIR_MODE = 0o722
#: Permission bits :func:`write_file` always clears, whatever the umask.
_NOT_WRITABLE_BY_OTHERS = 0o022

#: Go's ``x509.ExtKeyUsage`` numbers as sent in the ``ExtKeyUsages`` header, for
#: the usages we are willing to sign. ``Any`` (0) is refused on purpose: it would
#: make an edge certificate good for every purpose.
GO_EXT_KEY_USAGES: dict[int, x509.ObjectIdentifier] = {
    1: ExtendedKeyUsageOID.SERVER_AUTH,
    2: ExtendedKeyUsageOID.CLIENT_AUTH,
}

# The legacy node identity KubeEdge still accepts for rotation; we do not.
_LEGACY = ("KubeEdge", "kubeedge.io")


class CertError(Exception):
    """A certificate, key or CSR could not be parsed or produced."""


class CsrRefused(CertError):
    """A CSR was refused; ``str(exc)`` is the reason returned to the client."""


class ClientCertRefused(CertError):
    """A client certificate does not authenticate the node it claims."""


@dataclass(frozen=True, slots=True)
class CertPair:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_der(self) -> bytes:
        return cert_to_der(self.cert)

    @property
    def key_der(self) -> bytes:
        return key_to_der(self.key)


# -- keys ----------------------------------------------------------------------


def new_key() -> ec.EllipticCurvePrivateKey:
    """A new ECDSA P-256 key, the only kind KubeEdge generates and signs with."""
    return ec.generate_private_key(ec.SECP256R1())


def key_to_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """SEC1 DER (Go ``MarshalECPrivateKey``), the format of ``cakeydata``."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PEM ``EC PRIVATE KEY`` (SEC1), as edgecore and keadm write keys."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def key_from_bytes(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Load an EC private key from PEM or DER (SEC1 or PKCS#8).

    Raises:
        CertError: not a key, or not an EC key (KubeEdge signs only with EC keys).
    """
    try:
        if data.lstrip().startswith(b"-----"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertError(f"not a private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"the key must be an ECDSA key, got {type(key).__name__}")
    return key


# -- certificates ----------------------------------------------------------------


def cert_to_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_from_bytes(data: bytes) -> x509.Certificate:
    """Load a certificate from PEM (the first block) or DER.

    Raises:
        CertError: the bytes are not a certificate.
    """
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertError(f"not a certificate: {exc}") from exc


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def new_ca(
    *, now: dt.datetime | None = None, key: ec.EllipticCurvePrivateKey | None = None
) -> CertPair:
    """Generate the KubeEdge CA exactly as cloudcore does (protocol.md 5.1).

    Self-signed, ECDSA P-256, serial 1024, CN ``KubeEdge``, valid 100 x 364 days,
    CA basic constraint, key usage certSign | digitalSignature | keyEncipherment,
    extended key usage serverAuth + clientAuth.
    """
    start = _now(now)
    key = key or new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(CA_SERIAL)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _key_usage(cert_sign=True, digital_signature=True, key_encipherment=True),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertPair(cert, key)


def new_server_cert(
    ca: CertPair,
    *,
    advertise_address: Sequence[str],
    dns_names: Sequence[str] = (),
    now: dt.datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> CertPair:
    """The cloudcore server certificate (protocol.md 5.1, ``pre_server.go``).

    CN and O ``KubeEdge``, EKU serverAuth, SAN IPs from ``advertise_address``
    and SAN DNS names from ``dns_names`` (empty strings, KubeEdge's default
    ``dnsNames: [""]``, are skipped), valid 100 x 364 days.

    Raises:
        CertError: an advertise address is not an IP address.
    """
    start = _now(now)
    key = key or new_key()
    sans: list[x509.GeneralName] = []
    for addr in advertise_address:
        if not addr:
            continue
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(addr)))
        except ValueError as exc:
            raise CertError(f"advertiseAddress {addr!r} is not an IP address") from exc
    sans.extend(x509.DNSName(name) for name in dns_names if name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_COMMON_NAME),
                    x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
                ]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_aki(ca.cert), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return CertPair(builder.sign(ca.key, hashes.SHA256()), key)


# -- edge CSRs and certificates ----------------------------------------------------


def node_common_name(node_name: str) -> str:
    """``system:node:<node>``, the CN of a node's certificate."""
    return NODE_CN_PREFIX + node_name


def new_csr(node_name: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The DER CSR edgecore sends to ``/edge.crt`` (``certmanager.go``).

    Subject C=CN, O=system:nodes, L=Hangzhou, ST=Zhejiang,
    CN=system:node:<node>; no SANs.
    """
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, EDGE_ORGANIZATION),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Hangzhou"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Zhejiang"),
            x509.NameAttribute(NameOID.COMMON_NAME, node_common_name(node_name)),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def csr_subject_cn(csr: x509.CertificateSigningRequest) -> str:
    return _single(csr.subject, NameOID.COMMON_NAME)


def verify_csr(data: bytes, node_name: str) -> x509.CertificateSigningRequest:
    """Check a DER CSR from ``/edge.crt`` before it is signed.

    The CSR must parse, be at most :data:`MAX_CSR_SIZE` bytes, carry a valid
    self-signature (proof that the requester holds the key), have the CN
    ``system:node:<node_name>`` and the O ``system:nodes``, and use a key we
    accept (ECDSA P-256/P-384/P-521, RSA >= 2048 bits, Ed25519).

    Raises:
        CsrRefused: with the reason for the client.
    """
    if not node_name:
        raise CsrRefused("the NodeName header is missing")
    if len(data) > MAX_CSR_SIZE:
        raise CsrRefused(f"CSR of {len(data)} bytes exceeds the cap of {MAX_CSR_SIZE} bytes")
    if not data:
        raise CsrRefused("the request body must be a DER certificate signing request")
    try:
        csr = x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise CsrRefused(f"the body is not a DER certificate signing request: {exc}") from exc
    try:
        public_key = csr.public_key()
        valid = csr.is_signature_valid
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CsrRefused(f"the CSR cannot be verified: {exc}") from exc
    if not valid:
        raise CsrRefused("the CSR signature is not valid")
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in {"secp256r1", "secp384r1", "secp521r1"}:
            raise CsrRefused(f"ECDSA curve {public_key.curve.name} is not accepted")
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise CsrRefused(f"RSA key of {public_key.key_size} bits is too small")
    elif not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise CsrRefused(f"key type {type(public_key).__name__} is not accepted")
    try:
        cn = _single(csr.subject, NameOID.COMMON_NAME)
    except CertError as exc:
        raise CsrRefused(f"the CSR subject: {exc}") from exc
    want = node_common_name(node_name)
    if cn != want:
        raise CsrRefused(f"the CSR's CN {cn!r} does not match {want!r}")
    orgs = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if EDGE_ORGANIZATION not in orgs:
        raise CsrRefused(f"the CSR's O must be {EDGE_ORGANIZATION!r}, got {orgs!r}")
    return csr


def parse_ext_key_usages(header: str | None) -> list[x509.ObjectIdentifier]:
    """The ``ExtKeyUsages`` header: a JSON array of Go ``x509.ExtKeyUsage`` numbers.

    Missing or empty means ``[clientAuth]``, KubeEdge's default.

    Raises:
        CsrRefused: not a JSON array of integers, or a usage we do not sign.
    """
    if header is None or not header.strip():
        return [ExtendedKeyUsageOID.CLIENT_AUTH]
    try:
        values = json.loads(header)
    except ValueError as exc:
        raise CsrRefused(f"ExtKeyUsages is not JSON: {exc}") from exc
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise CsrRefused("ExtKeyUsages must be a JSON array of integers")
    if not values:
        return [ExtendedKeyUsageOID.CLIENT_AUTH]
    usages: list[x509.ObjectIdentifier] = []
    for v in values:
        oid = GO_EXT_KEY_USAGES.get(v)
        if oid is None:
            allowed = ", ".join(f"{n} ({o._name})" for n, o in GO_EXT_KEY_USAGES.items())
            raise CsrRefused(f"ExtKeyUsage {v} is not allowed; allowed: {allowed}")
        if oid not in usages:
            usages.append(oid)
    return usages


def sign_edge_cert(
    ca: CertPair,
    csr: x509.CertificateSigningRequest,
    *,
    usages: Iterable[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    days: int = 365,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Issue a node certificate for a verified CSR (``SignCerts``).

    Copies CN, O and the DNS/IP SANs of the CSR; random serial; key usage
    digitalSignature | keyEncipherment; the given EKUs; lifetime ``days``.
    """
    if days <= 0:
        raise CertError(f"edgeCertSigningDuration must be positive, got {days}")
    start = _now(now)
    attrs = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(a.value))
        for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, csr_subject_cn(csr)))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.cert.subject)
        .public_key(csr.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(_aki(ca.cert), critical=False)
    )
    sans: list[x509.GeneralName] = []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        sans.extend(x509.DNSName(n) for n in san.get_values_for_type(x509.DNSName))
        sans.extend(x509.IPAddress(ip) for ip in san.get_values_for_type(x509.IPAddress))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def verify_client_cert(
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    *,
    node_name: str,
    now: dt.datetime | None = None,
) -> None:
    """Check that ``cert`` authenticates ``node_name`` (rotation, node auth).

    The certificate must be signed by the CA, be within its validity period,
    allow clientAuth if it has an EKU extension, and have CN
    ``system:node:<node_name>`` and O ``system:nodes``. KubeEdge's legacy
    identity (O ``KubeEdge``, CN ``kubeedge.io``) is refused: it names no node.

    Raises:
        ClientCertRefused: with the reason.
    """
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise ClientCertRefused("the client certificate is not signed by the KubeEdge CA") from exc
    moment = _now(now)
    if moment < cert.not_valid_before_utc:
        raise ClientCertRefused("the client certificate is not valid yet")
    if moment > cert.not_valid_after_utc:
        raise ClientCertRefused("the client certificate has expired")
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise ClientCertRefused("the client certificate does not allow clientAuth")
    try:
        cn = _single(cert.subject, NameOID.COMMON_NAME)
    except CertError as exc:
        raise ClientCertRefused(f"the client certificate subject: {exc}") from exc
    want = node_common_name(node_name)
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if (orgs[:1], cn) == ([_LEGACY[0]], _LEGACY[1]):
        raise ClientCertRefused(
            "legacy certificates (CN kubeedge.io) are not accepted; bootstrap with a token"
        )
    if cn != want:
        raise ClientCertRefused(f"the client certificate's CN {cn!r} does not match {want!r}")
    if EDGE_ORGANIZATION not in orgs:
        raise ClientCertRefused(f"the client certificate's O must be {EDGE_ORGANIZATION!r}")


# -- helpers ---------------------------------------------------------------------


def _key_usage(
    *, cert_sign: bool = False, digital_signature: bool = False, key_encipherment: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _aki(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        # A CA made by KubeEdge's Go code may lack the SKI; derive it from the key.
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_cert.public_key()  # type: ignore[arg-type]
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _single(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        raise CertError(f"expected exactly one {oid._name}, found {len(values)}")
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


# -- files -----------------------------------------------------------------------


def write_file(path: Path, data: bytes, *, mode: int = FILE_MODE, dir_mode: int = DIR_MODE) -> None:
    """Write ``data`` to ``path`` with KubeEdge's modes, creating parent dirs.

    Like Go's ``os.WriteFile``/``MkdirAll`` the modes go through the umask, and
    on top of it group and other write bits are always cleared: with umask 0
    KubeEdge's 0622/0722 would leave a private key (or its directory) writable
    by anyone. The file is written to a temporary sibling and renamed, so a
    reader never sees half a certificate.
    """
    mode &= ~_NOT_WRITABLE_BY_OTHERS
    dir_mode &= ~_NOT_WRITABLE_BY_OTHERS
    path.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
