"""The cert store against an API server: KubeEdge's secrets (protocol.md 5.1, 5.2)."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

from cloudcore.cloudhub.certstore import CertStore, CertStoreSettings
from kecommon import certs, token
from kubeclient import KubeClient


def settings_for(tmp: Path, namespace: str) -> CertStoreSettings:
    return CertStoreSettings(
        ca_file=tmp / "ca" / "rootCA.crt",
        ca_key_file=tmp / "ca" / "rootCA.key",
        cert_file=tmp / "certs" / "server.crt",
        key_file=tmp / "certs" / "server.key",
        advertise_address=("127.0.0.1",),
        dns_names=("cloud.example",),
        token_refresh_hours=1,
        namespace=namespace,
    )


async def secret_data(api: Any, namespace: str, name: str) -> dict[str, bytes]:
    obj = await api.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    assert obj["type"] == "Opaque"
    return {k: base64.b64decode(v) for k, v in obj["data"].items()}


async def test_generates_into_kubeedge_secrets_and_reuses_them(
    kube_api: Any, tmp_path: Path
) -> None:
    # A namespace that does not exist yet, as "kubeedge" on a fresh cluster.
    ns = f"kubeedge-{secrets.token_hex(3)}"
    kube_api.adopt_namespace(ns)
    settings = settings_for(tmp_path, ns)
    async with await KubeClient.from_kubeconfig(kube_api.kubeconfig) as kube:
        store = await CertStore.load(settings, kube)
        assert store.sources == {"ca": "generated", "server": "generated"}
        assert not settings.ca_file.exists()  # with a cluster, secrets hold the material
        await kube_api.request("GET", f"/api/v1/namespaces/{ns}")
        ca = await secret_data(kube_api, ns, "casecret")
        assert ca == {"cadata": store.ca.cert_der, "cakeydata": store.ca.key_der}
        assert certs.key_from_bytes(ca["cakeydata"]).private_numbers() == (
            store.ca.key.private_numbers()
        )
        server = await secret_data(kube_api, ns, "cloudcoresecret")
        assert server == {
            "cloudcoredata": store.server.cert_der,
            "cloudcorekeydata": store.server.key_der,
        }
        tok = (await secret_data(kube_api, ns, "tokensecret"))["tokendata"].decode()
        assert tok == store.token
        token.verify_token(tok, ca["cadata"], ca["cakeydata"])

        again = await CertStore.load(settings, kube)
        assert again.sources == {
            "ca": f"secret {ns}/casecret",
            "server": f"secret {ns}/cloudcoresecret",
        }
        assert again.ca.cert_der == store.ca.cert_der
        assert again.server.cert_der == store.server.cert_der
        await again.refresh_token()
        stored = (await secret_data(kube_api, ns, "tokensecret"))["tokendata"].decode()
        assert stored == again.token


async def test_reads_a_kubeedge_made_casecret_and_files_win(kube_api: Any, tmp_path: Path) -> None:
    ns = await kube_api.make_namespace("ke")
    theirs = certs.new_ca()  # what KubeEdge's cloudcore would have stored (DER, SEC1 key)
    await kube_api.request(
        "POST",
        f"/api/v1/namespaces/{ns}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "casecret", "namespace": ns},
            "type": "Opaque",
            "data": {
                "cadata": base64.b64encode(theirs.cert_der).decode(),
                "cakeydata": base64.b64encode(theirs.key_der).decode(),
            },
        },
    )
    settings = settings_for(tmp_path, ns)
    async with await KubeClient.from_kubeconfig(kube_api.kubeconfig) as kube:
        store = await CertStore.load(settings, kube)
        assert store.sources["ca"] == f"secret {ns}/casecret"
        assert store.ca.cert_der == theirs.cert_der
        store.server.cert.verify_directly_issued_by(theirs.cert)

        # PEM files, when both exist, take precedence and are written back to casecret.
        mine = certs.new_ca()
        certs.write_file(settings.ca_file, certs.cert_to_pem(mine.cert))
        certs.write_file(settings.ca_key_file, certs.key_to_pem(mine.key))
        store = await CertStore.load(settings, kube)
        assert store.sources["ca"].startswith("files")
        assert (await secret_data(kube_api, ns, "casecret"))["cadata"] == mine.cert_der
        # The stored server certificate was signed by the old CA: replaced.
        assert store.sources["server"] == "generated"
        store.server.cert.verify_directly_issued_by(mine.cert)
