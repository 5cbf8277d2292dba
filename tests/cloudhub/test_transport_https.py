"""The HTTPS bootstrap server (protocol.md 5.3, 5.4) and the PEM-file cert store."""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.client import connect

from beehive import codec
from beehive.message import Message
from cloudcore.cloudhub.certstore import CertStore, CertStoreSettings
from cloudcore.cloudhub.https import HttpsServer
from cloudcore.cloudhub.tls import server_ssl_context
from fixtures.hubpki import RecordingHandler, edge_headers, wait_for
from kecommon import certs, token


def store_settings(root: Path) -> CertStoreSettings:
    return CertStoreSettings(
        ca_file=root / "ca" / "rootCA.crt",
        ca_key_file=root / "ca" / "rootCA.key",
        cert_file=root / "certs" / "server.crt",
        key_file=root / "certs" / "server.key",
        advertise_address=("127.0.0.1",),
        dns_names=("", "localhost"),
        token_refresh_hours=1,
    )


@pytest.fixture
async def store(tmp_path: Path) -> CertStore:
    return await CertStore.load(store_settings(tmp_path))


@pytest.fixture
async def https(store: CertStore) -> AsyncIterator[HttpsServer]:
    known = {"edge-known"}

    async def lookup(name: str) -> bool:
        if name == "boom":
            raise RuntimeError("API server unreachable")
        return name in known

    server = HttpsServer(
        store,
        address="127.0.0.1",
        port=0,
        ssl_context=server_ssl_context(store.server, store.ca.cert, client_cert=ssl.CERT_OPTIONAL),
        cert_days=30,
        node_lookup=lookup,
    )
    await server.start()
    yield server
    await server.stop()


def edge_ssl(store: CertStore, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=store.ca.cert_der)  # hostname checked
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


async def request(
    server: HttpsServer,
    path: str,
    *,
    ctx: ssl.SSLContext | bool = False,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"https://localhost:{server.port}{path}", ssl=ctx, headers=headers, data=body
        ) as resp,
    ):
        return resp.status, await resp.read()


def bootstrap_jwt(store: CertStore) -> str:
    return token.split_token(store.token)[1]


async def sign(
    server: HttpsServer,
    store: CertStore,
    node: str,
    *,
    auth: str | None = None,
    csr: bytes | None = None,
    extra: dict[str, str] | None = None,
    ctx: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    headers = {"NodeName": node}
    if auth is not None:
        headers["Authorization"] = auth
    headers.update(extra or {})
    body = csr if csr is not None else certs.new_csr(node, certs.new_key())
    return await request(
        server, "/edge.crt", ctx=ctx or edge_ssl(store), headers=headers, body=body
    )


async def test_ca_download_matches_the_token(https: HttpsServer, store: CertStore) -> None:
    # The edge fetches /ca.crt without verification, then checks it against the token.
    status, body = await request(https, "/ca.crt")
    assert status == 200
    assert body == store.ca.cert_der
    assert token.verify_ca(store.token, body) == bootstrap_jwt(store)
    assert store.token.split(".")[0] == hashlib.sha256(body).hexdigest()


async def test_bootstrap_with_token_then_connect_over_websocket(
    https: HttpsServer,
    store: CertStore,
    ws_server: Any,
    recording_handler: RecordingHandler,
    tmp_path: Path,
) -> None:
    key = certs.new_key()
    status, der = await sign(
        https,
        store,
        "edge-1",
        auth=f"Bearer {bootstrap_jwt(store)}",
        csr=certs.new_csr("edge-1", key),
    )
    assert status == 200, der
    cert = x509.load_der_x509_certificate(der)
    cert.verify_directly_issued_by(store.ca.cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:edge-1"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    # The issued certificate is good for the hub (the ws_server fixture uses
    # its own PKI, so start one on this store's CA).
    from cloudcore.cloudhub.transport.common import HubServerSettings
    from cloudcore.cloudhub.transport.ws import WebSocketServer

    hub = WebSocketServer(
        HubServerSettings(address="127.0.0.1", port=0),
        ssl_context=server_ssl_context(store.server, store.ca.cert),
        ca_cert=store.ca.cert,
        handler=recording_handler,
    )
    await hub.start()
    try:
        (tmp_path / "e.crt").write_bytes(certs.cert_to_pem(cert))
        (tmp_path / "e.key").write_bytes(certs.key_to_pem(key))
        ctx = edge_ssl(store, (tmp_path / "e.crt", tmp_path / "e.key"))
        async with await connect(
            f"wss://localhost:{hub.port}/p/edge-1/events",
            ssl=ctx,
            additional_headers=edge_headers("edge-1"),
        ) as ws:
            await ws.send(
                codec.encode(
                    Message.new(
                        source="websocket",
                        group="resource",
                        operation="keepalive",
                        resource="node",
                        content="ping",
                    )
                )
            )
            await wait_for(lambda: recording_handler.of("edge-1"))
    finally:
        await hub.stop()


async def test_rotation_with_the_current_client_certificate(
    https: HttpsServer, store: CertStore, tmp_path: Path
) -> None:
    key = certs.new_key()
    status, der = await sign(
        https,
        store,
        "edge-2",
        auth=f"Bearer {bootstrap_jwt(store)}",
        csr=certs.new_csr("edge-2", key),
    )
    assert status == 200
    (tmp_path / "c.crt").write_bytes(certs.cert_to_pem(x509.load_der_x509_certificate(der)))
    (tmp_path / "c.key").write_bytes(certs.key_to_pem(key))
    ctx = edge_ssl(store, (tmp_path / "c.crt", tmp_path / "c.key"))
    status, der2 = await sign(https, store, "edge-2", ctx=ctx)  # no token
    assert status == 200, der2
    assert (
        x509.load_der_x509_certificate(der2).serial_number
        != x509.load_der_x509_certificate(der).serial_number
    )
    # The same certificate cannot get one for another node.
    status, body = await sign(https, store, "edge-3", ctx=ctx)
    assert status == 401
    assert b"does not match 'system:node:edge-3'" in body


async def test_client_certificate_from_another_ca_fails_the_handshake(
    https: HttpsServer, store: CertStore, tmp_path: Path
) -> None:
    other = certs.new_ca()
    key = certs.new_key()
    cert = certs.sign_edge_cert(other, certs.verify_csr(certs.new_csr("e", key), "e"))
    (tmp_path / "o.crt").write_bytes(certs.cert_to_pem(cert))
    (tmp_path / "o.key").write_bytes(certs.key_to_pem(key))
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await sign(https, store, "e", ctx=edge_ssl(store, (tmp_path / "o.crt", tmp_path / "o.key")))
    status, _ = await request(https, "/ca.crt")  # the server is fine
    assert status == 200


async def test_token_refusals_say_why(https: HttpsServer, store: CertStore) -> None:
    other = certs.new_ca()
    forged = token.create_jwt(other.key_der, refresh_hours=1)
    expired = token.create_jwt(store.ca.key_der, refresh_hours=1, now=time.time() - 3 * 3600)
    cases = [
        (None, "no token"),
        ("Bearer not-a-jwt", "not a JWT"),
        ("Basic abc", "Bearer <token>"),
        (f"Bearer {forged}", "bad signature"),
        (f"Bearer {expired}", "expired"),
    ]
    for auth, reason in cases:
        status, body = await sign(https, store, "edge-4", auth=auth)
        assert (status, reason in body.decode()) == (401, True), (auth, body)


async def test_csr_refusals_say_why(https: HttpsServer, store: CertStore) -> None:
    auth = f"Bearer {bootstrap_jwt(store)}"
    status, body = await sign(
        https, store, "edge-5", auth=auth, csr=certs.new_csr("edge-6", certs.new_key())
    )
    assert status == 403 and b"does not match" in body
    status, body = await sign(https, store, "edge-5", auth=auth, csr=b"\x30\x03garbage")
    assert status == 400 and b"not a DER certificate signing request" in body
    tampered = bytearray(certs.new_csr("edge-5", certs.new_key()))
    tampered[-5] ^= 0xFF
    status, body = await sign(https, store, "edge-5", auth=auth, csr=bytes(tampered))
    assert status == 400, body
    status, body = await sign(https, store, "edge-5", auth=auth, csr=b"")
    assert status == 400 and b"must be a DER" in body
    status, body = await sign(https, store, "edge-5", auth=auth, extra={"ExtKeyUsages": "[0]"})
    assert status == 400 and b"not allowed" in body
    status, body = await sign(
        https, store, "edge-5", auth=auth, csr=b"\x30" * (certs.MAX_CSR_SIZE + 10)
    )
    assert status == 413
    status, body = await request(
        https, "/edge.crt", ctx=edge_ssl(store), headers={"Authorization": auth}, body=b"x"
    )
    assert status == 400 and b"NodeName" in body


async def test_ext_key_usages_header(https: HttpsServer, store: CertStore) -> None:
    status, der = await sign(
        https,
        store,
        "edge-7",
        auth=f"Bearer {bootstrap_jwt(store)}",
        extra={"ExtKeyUsages": "[1, 2]"},
    )
    assert status == 200
    eku = (
        x509.load_der_x509_certificate(der)
        .extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        .value
    )
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


async def test_node_check(https: HttpsServer) -> None:
    assert await request(https, "/node/edge-known") == (200, b"Node found")
    assert await request(https, "/node/edge-new") == (404, b"Node not found")
    status, body = await request(https, "/node/boom")
    assert status == 500 and b"unreachable" in body


async def test_server_certificate_sans(https: HttpsServer, store: CertStore) -> None:
    # Hostname verification on, as edgecore's bootstrap client does it.
    ctx = edge_ssl(store)
    async with aiohttp.ClientSession() as session:
        for host in ("127.0.0.1", "localhost"):
            async with session.get(f"https://{host}:{https.port}/ca.crt", ssl=ctx) as resp:
                assert resp.status == 200


# -- the PEM-file store ---------------------------------------------------------------


async def test_store_generates_writes_and_reloads(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    first = await CertStore.load(settings)
    assert first.sources == {"ca": "generated", "server": "generated"}
    assert settings.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert settings.ca_key_file.read_bytes().startswith(b"-----BEGIN EC PRIVATE KEY-----")
    second = await CertStore.load(settings)
    assert second.sources["ca"].startswith("files") and second.sources["server"].startswith("files")
    assert second.ca.cert_der == first.ca.cert_der
    assert second.server.cert_der == first.server.cert_der
    # A token from the first run is still good: same CA key.
    token.verify_token(first.token, second.ca.cert_der, second.ca.key_der)


async def test_store_replaces_a_server_cert_from_another_ca(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    await CertStore.load(settings)
    other = certs.new_ca()
    stray = certs.new_server_cert(other, advertise_address=["127.0.0.1"])
    settings.cert_file.write_bytes(certs.cert_to_pem(stray.cert))
    settings.key_file.write_bytes(certs.key_to_pem(stray.key))
    store = await CertStore.load(settings)
    assert store.sources["server"] == "generated"
    store.server.cert.verify_directly_issued_by(store.ca.cert)


async def test_store_refuses_mismatched_or_garbled_files(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    await CertStore.load(settings)
    settings.ca_key_file.write_bytes(certs.key_to_pem(certs.new_key()))
    with pytest.raises(certs.CertError, match="is not the key of"):
        await CertStore.load(settings)
    settings.ca_key_file.write_bytes(b"garbage")
    with pytest.raises(certs.CertError, match="not a private key"):
        await CertStore.load(settings)


async def test_token_refresh_keeps_old_tokens_valid(store: CertStore) -> None:
    old = store.token
    new = await store.refresh_token()
    assert new == store.token
    store.verify_bearer(f"Bearer {token.split_token(old)[1]}")
    store.verify_bearer(f"Bearer {token.split_token(new)[1]}")
    exp = token.verify_token(new, store.ca.cert_der, store.ca.key_der)
    assert abs(exp - (time.time() + 2 * 3600)) < 5
