"""``GET /node/{name}/status``: the Ready condition, for the node itself only.

The server is cloudhub's HttpsServer with a PEM-file CertStore; the Node comes
from a real API server (devkube, or the cluster of ``KUBEEDGE_TEST_KUBECONFIG``)
through kubeclient, as cloudcore reads it. The node certificates are issued by
the server's own ``/edge.crt`` with the store's token, as ``keadm join`` gets
them.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import kubeclient
from cloudcore.cloudhub.certstore import CertStore, CertStoreSettings
from cloudcore.cloudhub.https import HttpsServer
from cloudcore.cloudhub.tls import server_ssl_context
from edgecore.edgehub import bootstrap
from fixtures.apiserver import KubeApi
from kecommon import certs


@pytest.fixture
async def store(tmp_path: Path) -> CertStore:
    # No API client for the store: on a shared cluster it must not replace the
    # kubeedge secrets of a real cloudcore.
    return await CertStore.load(
        CertStoreSettings(
            ca_file=tmp_path / "ca" / "rootCA.crt",
            ca_key_file=tmp_path / "ca" / "rootCA.key",
            cert_file=tmp_path / "certs" / "server.crt",
            key_file=tmp_path / "certs" / "server.key",
            advertise_address=("127.0.0.1",),
            dns_names=("localhost",),
            token_refresh_hours=1,
        )
    )


@pytest.fixture
async def kube(kube_api: KubeApi) -> AsyncIterator[kubeclient.KubeClient]:
    client = await kubeclient.KubeClient.from_kubeconfig(kube_api.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def server(store: CertStore, kube: kubeclient.KubeClient) -> AsyncIterator[HttpsServer]:
    async def get_node(name: str) -> dict[str, Any] | None:
        try:
            return await kube.get(kubeclient.NODES, name)
        except kubeclient.NotFound:
            return None

    https = HttpsServer(
        store,
        address="127.0.0.1",
        port=0,
        ssl_context=server_ssl_context(store.server, store.ca.cert, client_cert=ssl.CERT_OPTIONAL),
        node_getter=get_node,
    )
    await https.start()
    try:
        yield https
    finally:
        await https.stop()


async def node_cert(
    server: HttpsServer, store: CertStore, node: str, out: Path
) -> tuple[Path, Path]:
    """A certificate for ``node`` from the server's /edge.crt, as keadm join gets one."""
    key_pem, csr = bootstrap.make_key_and_csr(node)
    der = await bootstrap.request_certificate(
        f"https://127.0.0.1:{server.port}", node=node, csr_der=csr,
        ca_pem=certs.cert_to_pem(store.ca.cert), jwt=store.token.split(".", 1)[1],
    )
    cert, key = out / f"{node}.crt", out / f"{node}.key"
    cert.write_bytes(bootstrap.der_to_pem(der))
    key.write_bytes(key_pem)
    return cert, key


async def get_status(
    server: HttpsServer, store: CertStore, node: str, client: tuple[Path, Path] | None
) -> tuple[int, dict[str, Any]]:
    ctx = ssl.create_default_context(cadata=store.ca.cert_der)  # host name checked
    if client is not None:
        ctx.load_cert_chain(*client)
    async with aiohttp.ClientSession() as session, session.get(
        f"https://127.0.0.1:{server.port}/node/{node}/status", ssl=ctx
    ) as resp:
        return resp.status, json.loads(await resp.read())


async def set_ready(kube: kubeclient.KubeClient, node: str, status: str, reason: str) -> None:
    obj = await kube.get(kubeclient.NODES, node)
    obj["status"] = {"conditions": [{
        "type": "Ready", "status": status, "reason": reason, "message": f"edged says {reason}",
        "lastHeartbeatTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z",
    }]}
    await kube.replace(kubeclient.NODES, node, obj, subresource="status")


async def test_the_node_reads_its_ready_condition(
    server: HttpsServer, store: CertStore, kube: kubeclient.KubeClient, kube_api: KubeApi,
    tmp_path: Path,
) -> None:
    node = await kube_api.make_node("status")
    mine = await node_cert(server, store, node, tmp_path)

    assert await get_status(server, store, node, mine) == (200, {
        "ready": False, "reason": "NotReported",
        "message": "the node has not reported a Ready condition yet",
    })
    await set_ready(kube, node, "True", "EdgeReady")
    assert await get_status(server, store, node, mine) == (
        200, {"ready": True, "reason": "EdgeReady", "message": "edged says EdgeReady"})
    await set_ready(kube, node, "False", "RuntimeDown")
    assert await get_status(server, store, node, mine) == (
        200, {"ready": False, "reason": "RuntimeDown", "message": "edged says RuntimeDown"})


async def test_only_the_node_itself_may_ask(
    server: HttpsServer, store: CertStore, kube_api: KubeApi, tmp_path: Path
) -> None:
    node = await kube_api.make_node("status")
    other = await kube_api.make_node("status")
    others_cert = await node_cert(server, store, other, tmp_path)

    status, body = await get_status(server, store, node, None)
    assert status == 401 and body["reason"] == "Unauthorized" and not body["ready"]
    assert "client certificate" in body["message"]

    status, body = await get_status(server, store, node, others_cert)
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == f"node {other} may not read the status of {node}"


async def test_unknown_node_is_404_in_the_same_shape(
    server: HttpsServer, store: CertStore, tmp_path: Path
) -> None:
    # A certificate can be issued before the node registers: exactly keadm join's case.
    ghost = "status-not-registered"
    mine = await node_cert(server, store, ghost, tmp_path)
    assert await get_status(server, store, ghost, mine) == (404, {
        "ready": False, "reason": "NodeNotFound",
        "message": f"node {ghost} is not registered (yet)",
    })


async def test_without_an_api_server_the_store_client_is_used(store: CertStore) -> None:
    # cloudcore builds the server without a getter: it reads the Node through
    # the store's API client; a store without one answers 500, never crashes.
    https = HttpsServer(
        store, address="127.0.0.1", port=0,
        ssl_context=server_ssl_context(store.server, store.ca.cert, client_cert=ssl.CERT_OPTIONAL),
    )
    await https.start()
    try:
        mine = await node_cert(https, store, "status-nokube", Path(store.settings.cert_file).parent)
        status, body = await get_status(https, store, "status-nokube", mine)
        assert (status, body["reason"]) == (500, "NoAPIServer")
    finally:
        await https.stop()
