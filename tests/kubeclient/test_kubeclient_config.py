"""Kubeconfig and in-cluster loading, over real TLS through the proxy."""

from __future__ import annotations

import base64
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import kubeclient
from fixtures._tlsutil import issue, make_ca
from fixtures.apiproxy import ApiProxy
from kubeclient.config import load_in_cluster, load_kubeconfig


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def _config(server: str, cluster: dict[str, Any], user: dict[str, Any], **ctx: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "b",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}},
                     {"name": "other", "cluster": {"server": "http://10.255.255.1:1"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "a", "context": {"cluster": "other", "user": "u"}},
                     {"name": "b", "context": {"cluster": "c", "user": "u", **ctx}}],
    }


def test_current_context_token_and_namespace(tmp_path: Path) -> None:
    path = _write(tmp_path / "kc", _config("https://127.0.0.1:6443/", {}, {"token": "abc"},
                                           namespace="team"))
    cfg = load_kubeconfig(path)
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.token == "abc"
    assert cfg.namespace == "team"
    assert load_kubeconfig(path, context="a").server == "http://10.255.255.1:1"


def test_token_file_relative_to_kubeconfig_and_reloaded(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("first\n")
    cfg = load_kubeconfig(_write(tmp_path / "kc", _config("http://x:1", {}, {"tokenFile": "tok"})))
    assert cfg.current_token(reload_interval=0) == "first"
    (tmp_path / "tok").write_text("second")
    assert cfg.current_token(reload_interval=3600) == "first"  # cached within the interval
    assert cfg.current_token(reload_interval=0) == "second"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"current-context": "", "clusters": []}, "no current-context"),
        (_config("http://x:1", {}, {}, ) | {"current-context": "zzz"}, "no context named"),
        (_config("ftp://x", {}, {}), "not an http"),
        (_config("http://x:1", {}, {"exec": {"command": "aws"}}), "exec/auth-provider"),
        (_config("https://x:1", {"certificate-authority-data": "bm90IGEgY2VydA=="}, {}),
         "not valid PEM"),
        (_config("https://x:1", {"certificate-authority": "missing.crt"}, {}), "cannot read"),
    ],
)
def test_bad_kubeconfigs_are_clear_errors(tmp_path: Path, doc: dict, message: str) -> None:
    with pytest.raises(kubeclient.ConfigError, match=message):
        load_kubeconfig(_write(tmp_path / "kc", doc))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(kubeclient.ConfigError, match="cannot read kubeconfig"):
        load_kubeconfig(tmp_path / "nope")
    (tmp_path / "bad").write_text("{ not: [yaml")
    with pytest.raises(kubeclient.ConfigError, match="not valid YAML"):
        load_kubeconfig(tmp_path / "bad")


def test_in_cluster(tmp_path: Path) -> None:
    ca, _, _ = make_ca()
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_bytes(ca.cert)
    (tmp_path / "namespace").write_text("kubeedge")
    cfg = load_in_cluster(sa_dir=tmp_path, environ={
        "KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"})
    assert cfg.server == "https://[fd00::1]:443"
    assert cfg.token == "sa-token"
    assert cfg.namespace == "kubeedge"
    assert cfg.ca_data == ca.cert
    with pytest.raises(kubeclient.ConfigError, match="not in a cluster"):
        load_in_cluster(sa_dir=tmp_path, environ={})
    with pytest.raises(kubeclient.ConfigError, match="does not exist"):
        load_in_cluster(sa_dir=tmp_path / "x", environ={"KUBERNETES_SERVICE_HOST": "h"})


@pytest.fixture
async def tls_proxy(kube_api: Any, tmp_path: Path):
    """The proxy serving TLS and requiring a client certificate from its CA."""
    ca, ca_key, ca_cert = make_ca("proxy-ca")
    server = issue(ca_key, ca_cert, "localhost", server=True)
    client = issue(ca_key, ca_cert, "tester", server=False)
    (tmp_path / "server.crt").write_bytes(server.cert)
    (tmp_path / "server.key").write_bytes(server.key)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    ctx.load_verify_locations(cadata=ca.cert.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    proxy = ApiProxy(load_kubeconfig(kube_api.kubeconfig))
    await proxy.start(server_ssl=ctx)
    try:
        yield proxy, ca, client
    finally:
        await proxy.stop()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


FAST = kubeclient.ClientSettings(retry=kubeclient.RetrySettings(backoffs=(0.01,)))


async def test_client_cert_and_ca_data_over_tls(tls_proxy: Any, tmp_path: Path) -> None:
    proxy, ca, client_pem = tls_proxy
    # The proxy authenticates us to the API with the upstream token; we prove
    # ourselves to the proxy with the client certificate only.
    kc = proxy.write_kubeconfig(
        tmp_path / "kc",
        cluster={"certificate-authority-data": _b64(ca.cert)},
        user={"client-certificate-data": _b64(client_pem.cert),
              "client-key-data": _b64(client_pem.key)},
    )
    async with await kubeclient.KubeClient.from_kubeconfig(kc, settings=FAST) as c:
        ns = await c.get(kubeclient.NAMESPACES, "default")
        assert ns["metadata"]["name"] == "default"


async def test_client_cert_files_and_ca_file(tls_proxy: Any, tmp_path: Path) -> None:
    proxy, ca, client_pem = tls_proxy
    (tmp_path / "ca.crt").write_bytes(ca.cert)
    (tmp_path / "c.crt").write_bytes(client_pem.cert)
    (tmp_path / "c.key").write_bytes(client_pem.key)
    kc = proxy.write_kubeconfig(
        tmp_path / "kc",
        cluster={"certificate-authority": "ca.crt"},
        user={"client-certificate": "c.crt", "client-key": str(tmp_path / "c.key")},
    )
    async with await kubeclient.KubeClient.from_kubeconfig(kc, settings=FAST) as c:
        assert (await c.get(kubeclient.NAMESPACES, "default"))["kind"] == "Namespace"


async def test_insecure_skip_verify_and_missing_client_cert(tls_proxy: Any, tmp_path: Path) -> None:
    proxy, _, client_pem = tls_proxy
    kc = proxy.write_kubeconfig(
        tmp_path / "kc",
        cluster={"insecure-skip-tls-verify": True},
        user={"client-certificate-data": _b64(client_pem.cert),
              "client-key-data": _b64(client_pem.key)},
    )
    async with await kubeclient.KubeClient.from_kubeconfig(kc, settings=FAST) as c:
        assert (await c.get(kubeclient.NAMESPACES, "default"))["kind"] == "Namespace"
    # Without a client certificate the TLS handshake is refused.
    kc2 = proxy.write_kubeconfig(tmp_path / "kc2", cluster={"insecure-skip-tls-verify": True},
                                 user={})
    async with await kubeclient.KubeClient.from_kubeconfig(kc2, settings=FAST) as c:
        with pytest.raises(kubeclient.ApiConnectionError) as info:
            await c.get(kubeclient.NAMESPACES, "default")
        assert info.value.__cause__ is not None


async def test_untrusted_server_fails_at_once(tls_proxy: Any, tmp_path: Path) -> None:
    proxy, _, client_pem = tls_proxy
    other_ca, _, _ = make_ca("someone-else")
    kc = proxy.write_kubeconfig(
        tmp_path / "kc",
        cluster={"certificate-authority-data": _b64(other_ca.cert)},
        user={"client-certificate-data": _b64(client_pem.cert),
              "client-key-data": _b64(client_pem.key)},
    )
    slow = kubeclient.ClientSettings(retry=kubeclient.RetrySettings(backoffs=(30.0,)))
    async with await kubeclient.KubeClient.from_kubeconfig(kc, settings=slow) as c:
        start = time.monotonic()
        with pytest.raises(kubeclient.ApiConnectionError, match="TLS verification failed"):
            await c.get(kubeclient.NAMESPACES, "default")
        assert time.monotonic() - start < 10  # not retried
