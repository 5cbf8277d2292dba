"""Certificate bootstrap against a real HTTPS server (protocol.md 5.4)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgecore.edgehub import bootstrap
from edgecore.edgehub.errors import (
    CAHashMismatch,
    CertificateExpired,
    CloudUnreachable,
    InvalidToken,
    TokenRefused,
)
from fixtures.minicloud import MiniCloud, edge_settings


def _config_with_token(path: Path, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "edgecore.config.kubeedge.io/v1alpha2",
                "kind": "EdgeCore",
                "modules": {"edgeHub": {"token": token, "heartbeat": 15}},
            }
        )
    )
    return path


async def test_bootstrap_with_a_good_token(minicloud: MiniCloud, tmp_path: Path) -> None:
    token = minicloud.token()
    cfg = _config_with_token(tmp_path / "edgecore.yaml", token)
    settings = edge_settings(minicloud, tmp_path, node="edge-a", token=token, config_file=cfg)

    info = await bootstrap.ensure_certificates(settings)

    # the cloud saw a token-authenticated CSR with KubeEdge's subject
    (issued,) = minicloud.issued
    assert issued.node == "edge-a" and issued.auth == "token"
    subject = {a.oid: a.value for a in issued.subject}
    assert subject == {
        NameOID.COUNTRY_NAME: "CN",
        NameOID.ORGANIZATION_NAME: "system:nodes",
        NameOID.LOCALITY_NAME: "Hangzhou",
        NameOID.STATE_OR_PROVINCE_NAME: "Zhejiang",
        NameOID.COMMON_NAME: "system:node:edge-a",
    }
    assert info.common_name == "system:node:edge-a"
    # files: CA and cert as PEM CERTIFICATE, key as SEC1 EC PRIVATE KEY, KubeEdge's modes
    assert settings.tls_ca_file.read_bytes() == minicloud.pki.ca_pem
    cert = x509.load_pem_x509_certificate(settings.tls_cert_file.read_bytes())
    assert cert.serial_number == issued.serial
    key_pem = settings.tls_private_key_file.read_bytes()
    assert key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    umask = os.umask(0)
    os.umask(umask)
    for f in (settings.tls_ca_file, settings.tls_cert_file, settings.tls_private_key_file):
        assert stat.S_IMODE(f.stat().st_mode) == 0o622 & ~umask
    assert stat.S_IMODE(settings.tls_cert_file.parent.stat().st_mode) == 0o722 & ~umask
    # the token is gone from the config file, the rest is kept
    data = yaml.safe_load(cfg.read_text())
    assert data["modules"]["edgeHub"]["token"] == ""
    assert data["modules"]["edgeHub"]["heartbeat"] == 15
    assert data["kind"] == "EdgeCore"

    # a second start uses the saved certificate: no new request
    settings2 = edge_settings(minicloud, tmp_path, node="edge-a", token="")
    assert (await bootstrap.ensure_certificates(settings2)).common_name == "system:node:edge-a"
    assert len(minicloud.issued) == 1


async def test_token_file_wins_and_is_removed(minicloud: MiniCloud, tmp_path: Path) -> None:
    token_file = tmp_path / "bootstrap-edgecore.conf"
    token_file.write_text(minicloud.token() + "\n")
    settings = edge_settings(
        minicloud, tmp_path, token="bad.token", bootstrap_token_file=token_file
    )
    await bootstrap.ensure_certificates(settings)
    assert minicloud.issued[0].auth == "token"
    assert not token_file.exists()


async def test_ca_hash_mismatch(minicloud: MiniCloud, tmp_path: Path) -> None:
    settings = edge_settings(minicloud, tmp_path, token=minicloud.token(ca_hash="ab" * 32))
    with pytest.raises(CAHashMismatch, match="CA hash mismatch"):
        await bootstrap.ensure_certificates(settings)
    assert not minicloud.issued
    assert not settings.tls_ca_file.exists() and not settings.tls_cert_file.exists()


async def test_refused_token_shows_the_servers_reason(minicloud: MiniCloud, tmp_path: Path) -> None:
    minicloud.refuse_reason = "token has expired"
    settings = edge_settings(minicloud, tmp_path)
    with pytest.raises(TokenRefused, match=r"HTTP 401.*token has expired") as info:
        await bootstrap.ensure_certificates(settings)
    assert not info.value.retryable
    assert not settings.tls_cert_file.exists()


async def test_token_signed_with_another_key_is_refused(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    other = type(minicloud.pki).create()
    token = f"{minicloud.token().split('.')[0]}.{other.token().split('.', 1)[1]}"
    with pytest.raises(TokenRefused, match="verify"):
        await bootstrap.ensure_certificates(edge_settings(minicloud, tmp_path, token=token))


async def test_cloud_unreachable(tmp_path: Path, minicloud: MiniCloud) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = edge_settings(minicloud, tmp_path, http_server=f"https://127.0.0.1:{port}")
    url = f"https://127.0.0.1:{port}"
    with pytest.raises(CloudUnreachable, match=f"cannot reach the cloud at {url}") as info:
        await bootstrap.ensure_certificates(settings)
    assert info.value.retryable


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a..b.c"])
async def test_malformed_token(minicloud: MiniCloud, tmp_path: Path, token: str) -> None:
    with pytest.raises(InvalidToken):
        await bootstrap.ensure_certificates(edge_settings(minicloud, tmp_path, token=token))


async def test_expired_certificate_without_token(minicloud: MiniCloud, tmp_path: Path) -> None:
    # The clock is injected below; a short real lifetime would make the test
    # depend on how fast a loaded machine gets from issuing to checking.
    minicloud.cert_lifetime = dt.timedelta(hours=1)
    settings = edge_settings(minicloud, tmp_path)
    info = await bootstrap.ensure_certificates(settings)
    settings.token = ""
    later = info.not_after + dt.timedelta(seconds=1)
    with pytest.raises(CertificateExpired, match="expired at"):
        bootstrap.load_client_cert(settings, now=later)


async def test_certificate_of_another_node_triggers_bootstrap(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    await bootstrap.ensure_certificates(edge_settings(minicloud, tmp_path, node="one"))
    info = await bootstrap.ensure_certificates(edge_settings(minicloud, tmp_path, node="two"))
    assert info.common_name == "system:node:two"
    assert [i.node for i in minicloud.issued] == ["one", "two"]


async def test_rotation_uses_the_client_certificate(minicloud: MiniCloud, tmp_path: Path) -> None:
    settings = edge_settings(minicloud, tmp_path)
    first = await bootstrap.ensure_certificates(settings)
    old_key = settings.tls_private_key_file.read_bytes()
    await bootstrap.rotate(settings)
    assert [i.auth for i in minicloud.issued] == ["token", "cert"]
    assert settings.tls_private_key_file.read_bytes() != old_key
    assert bootstrap.load_client_cert(settings) is not None
    deadline = bootstrap.rotation_deadline(first)
    span = (deadline - first.not_before) / first.lifetime
    assert 0.7 <= span <= 0.9
