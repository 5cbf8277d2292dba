"""kecommon.certs pins the facts of protocol.md 5.1, 5.3 and 5.4."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kecommon import certs

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> certs.CertPair:
    return certs.new_ca(now=NOW)


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def test_ca_matches_kubeedge(ca: certs.CertPair) -> None:
    c = ca.cert
    assert isinstance(ca.key.curve, ec.SECP256R1)
    assert c.serial_number == 1024
    assert _attr(c.subject, NameOID.COMMON_NAME) == ["KubeEdge"]
    assert c.issuer == c.subject
    c.verify_directly_issued_by(c)
    assert c.not_valid_before_utc == NOW
    assert c.not_valid_after_utc - c.not_valid_before_utc == dt.timedelta(days=36400)
    bc = c.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is True
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (ku.key_cert_sign, ku.digital_signature, ku.key_encipherment) == (True, True, True)
    assert not ku.crl_sign
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_ca_key_der_is_sec1(ca: certs.CertPair) -> None:
    der = ca.key_der
    # SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING ... }, not PKCS#8 (INTEGER 0).
    assert der[0] == 0x30 and der[2:5] == b"\x02\x01\x01"
    assert der == ca.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert certs.key_from_bytes(der).private_numbers() == ca.key.private_numbers()
    pem = certs.key_to_pem(ca.key)
    assert pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert certs.key_from_bytes(pem).private_numbers() == ca.key.private_numbers()


def test_key_from_bytes_refuses_garbage_and_rsa() -> None:
    with pytest.raises(certs.CertError, match="not a private key"):
        certs.key_from_bytes(b"nonsense")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = rsa_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(certs.CertError, match="ECDSA"):
        certs.key_from_bytes(der)


def test_cert_pem_der_round_trip(ca: certs.CertPair) -> None:
    assert certs.cert_from_bytes(certs.cert_to_der(ca.cert)) == ca.cert
    pem = certs.cert_to_pem(ca.cert)
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert certs.cert_from_bytes(pem) == ca.cert
    with pytest.raises(certs.CertError):
        certs.cert_from_bytes(b"\x30\x03\x02\x01\x01")


def test_server_cert_sans_and_usage(ca: certs.CertPair) -> None:
    pair = certs.new_server_cert(
        ca, advertise_address=["10.1.2.3", "::1"], dns_names=["", "cloud.example"], now=NOW
    )
    c = pair.cert
    c.verify_directly_issued_by(ca.cert)
    assert _attr(c.subject, NameOID.COMMON_NAME) == ["KubeEdge"]
    assert _attr(c.subject, NameOID.ORGANIZATION_NAME) == ["KubeEdge"]
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["cloud.example"]
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert c.not_valid_after_utc - c.not_valid_before_utc == dt.timedelta(days=36400)
    with pytest.raises(certs.CertError, match="not an IP"):
        certs.new_server_cert(ca, advertise_address=["cloud.example"])


def test_csr_subject_is_edgecores() -> None:
    der = certs.new_csr("edge-1", certs.new_key())
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    s = csr.subject
    assert _attr(s, NameOID.COUNTRY_NAME) == ["CN"]
    assert _attr(s, NameOID.ORGANIZATION_NAME) == ["system:nodes"]
    assert _attr(s, NameOID.LOCALITY_NAME) == ["Hangzhou"]
    assert _attr(s, NameOID.STATE_OR_PROVINCE_NAME) == ["Zhejiang"]
    assert _attr(s, NameOID.COMMON_NAME) == ["system:node:edge-1"]
    assert len(csr.extensions) == 0


def test_verify_csr_accepts_a_good_one() -> None:
    csr = certs.verify_csr(certs.new_csr("n1", certs.new_key()), "n1")
    assert certs.csr_subject_cn(csr) == "system:node:n1"


def _csr(subject: list[x509.NameAttribute], key: object | None = None) -> bytes:
    k = key or certs.new_key()
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(subject))
        .sign(k, hashes.SHA256())  # type: ignore[arg-type]
        .public_bytes(serialization.Encoding.DER)
    )


@pytest.mark.parametrize(
    ("make", "node", "reason"),
    [
        (lambda: certs.new_csr("other", certs.new_key()), "n1", "does not match"),
        (lambda: b"", "n1", "must be a DER"),
        (lambda: b"\x30\x82garbage", "n1", "not a DER"),
        (lambda: certs.new_csr("n1", certs.new_key()), "", "NodeName"),
        (lambda: b"\x00" * (certs.MAX_CSR_SIZE + 1), "n1", "exceeds the cap"),
        (
            lambda: _csr([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:n1")]),
            "n1",
            "O must be",
        ),
        (
            lambda: _csr([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes")]),
            "n1",
            "exactly one",
        ),
        (
            lambda: _csr(
                [x509.NameAttribute(NameOID.COMMON_NAME, "system:node:n1")],
                rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 - the point of the test
            ),
            "n1",
            "too small",
        ),
    ],
)
def test_verify_csr_refuses_with_reason(make: object, node: str, reason: str) -> None:
    with pytest.raises(certs.CsrRefused, match=reason):
        certs.verify_csr(make(), node)  # type: ignore[operator]


def test_verify_csr_refuses_a_tampered_signature() -> None:
    der = bytearray(certs.new_csr("n1", certs.new_key()))
    der[-3] ^= 0x01  # inside the signature BIT STRING
    with pytest.raises(certs.CsrRefused, match=r"signature|cannot be verified|not a DER"):
        certs.verify_csr(bytes(der), "n1")


def test_verify_csr_refuses_a_csr_signed_by_another_key() -> None:
    # Same subject, but the signature comes from another key's CSR. ECDSA
    # signatures vary in length, so pick a pair whose DER lengths agree.
    good = x509.load_der_x509_csr(certs.new_csr("n1", certs.new_key()))
    while True:
        other = x509.load_der_x509_csr(certs.new_csr("n1", certs.new_key()))
        if len(other.signature) == len(good.signature):
            break
    der = good.public_bytes(serialization.Encoding.DER)
    assert der.count(good.signature) == 1
    spliced = der.replace(good.signature, other.signature)
    with pytest.raises(certs.CsrRefused, match="signature is not valid"):
        certs.verify_csr(spliced, "n1")


def test_ext_key_usages_header() -> None:
    assert certs.parse_ext_key_usages(None) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certs.parse_ext_key_usages("") == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certs.parse_ext_key_usages("[]") == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certs.parse_ext_key_usages("[1,2,2]") == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    for bad, reason in [("[0]", "not allowed"), ("{", "not JSON"), ('["1"]', "array of")]:
        with pytest.raises(certs.CsrRefused, match=reason):
            certs.parse_ext_key_usages(bad)


def test_sign_edge_cert(ca: certs.CertPair) -> None:
    key = certs.new_key()
    csr = certs.verify_csr(certs.new_csr("edge-9", key), "edge-9")
    c1 = certs.sign_edge_cert(ca, csr, days=10, now=NOW)
    c2 = certs.sign_edge_cert(ca, csr, days=10, now=NOW)
    c1.verify_directly_issued_by(ca.cert)
    assert c1.serial_number != c2.serial_number and c1.serial_number != 1024
    assert c1.public_key() == key.public_key()
    assert _attr(c1.subject, NameOID.COMMON_NAME) == ["system:node:edge-9"]
    assert _attr(c1.subject, NameOID.ORGANIZATION_NAME) == ["system:nodes"]
    assert c1.not_valid_before_utc == NOW
    assert c1.not_valid_after_utc == NOW + dt.timedelta(days=10)
    ku = c1.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (ku.digital_signature, ku.key_encipherment, ku.key_cert_sign) == (True, True, False)
    eku = c1.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not c1.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    both = certs.sign_edge_cert(
        ca, csr, usages=certs.parse_ext_key_usages("[1, 2]"), days=1, now=NOW
    )
    assert set(both.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    with pytest.raises(certs.CertError):
        certs.sign_edge_cert(ca, csr, days=0)


def test_sign_copies_csr_sans(ca: certs.CertPair) -> None:
    key = certs.new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "system:node:e"),
                ]
            )
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("e.local"), x509.IPAddress(ipaddress.ip_address("10.0.0.9"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    c = certs.sign_edge_cert(ca, csr, now=NOW)
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["e.local"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.9")]


def test_verify_client_cert(ca: certs.CertPair) -> None:
    csr = certs.verify_csr(certs.new_csr("e1", certs.new_key()), "e1")
    cert = certs.sign_edge_cert(ca, csr, days=5, now=NOW)
    certs.verify_client_cert(cert, ca.cert, node_name="e1", now=NOW + dt.timedelta(days=1))
    with pytest.raises(certs.ClientCertRefused, match="does not match"):
        certs.verify_client_cert(cert, ca.cert, node_name="e2", now=NOW)
    with pytest.raises(certs.ClientCertRefused, match="expired"):
        certs.verify_client_cert(cert, ca.cert, node_name="e1", now=NOW + dt.timedelta(days=6))
    with pytest.raises(certs.ClientCertRefused, match="not valid yet"):
        certs.verify_client_cert(cert, ca.cert, node_name="e1", now=NOW - dt.timedelta(days=1))
    other_ca = certs.new_ca(now=NOW)
    with pytest.raises(certs.ClientCertRefused, match="not signed by the KubeEdge CA"):
        certs.verify_client_cert(cert, other_ca.cert, node_name="e1", now=NOW)
    server_only = certs.sign_edge_cert(ca, csr, usages=[ExtendedKeyUsageOID.SERVER_AUTH], now=NOW)
    with pytest.raises(certs.ClientCertRefused, match="clientAuth"):
        certs.verify_client_cert(server_only, ca.cert, node_name="e1", now=NOW)
    legacy_csr = x509.load_der_x509_csr(
        _csr(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KubeEdge"),
                x509.NameAttribute(NameOID.COMMON_NAME, "kubeedge.io"),
            ]
        )
    )
    legacy = certs.sign_edge_cert(ca, legacy_csr, now=NOW)
    with pytest.raises(certs.ClientCertRefused, match="legacy"):
        certs.verify_client_cert(legacy, ca.cert, node_name="e1", now=NOW)


def test_write_file_uses_kubeedge_modes_through_umask(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    old = os.umask(0o022)
    try:
        target = base / "new" / "dir" / "server.key"
        certs.write_file(target, b"secret")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o622 & ~0o022
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o722 & ~0o022
    certs.write_file(target, b"again")
    assert target.read_bytes() == b"again"
    assert [p.name for p in target.parent.iterdir()] == ["server.key"]


def test_write_file_never_leaves_keys_writable_by_others(tmp_path: object) -> None:
    # With umask 0 (containers, daemons started that way) KubeEdge's 0622/0722
    # would give a world-writable CA key and directory: anyone could swap them.
    from pathlib import Path

    base = Path(str(tmp_path))
    old = os.umask(0)
    try:
        key = base / "pki" / "ca.key"
        certs.write_file(key, b"secret")
        explicit = base / "edge" / "server.key"
        certs.write_file(explicit, b"secret", mode=0o622, dir_mode=0o722)
    finally:
        os.umask(old)
    for path in (key, explicit):
        assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0
        assert stat.S_IMODE(path.parent.stat().st_mode) & 0o022 == 0
