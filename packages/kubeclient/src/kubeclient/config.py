"""Connection settings from a kubeconfig file or from inside a pod.

Supported: ``current-context`` (or an explicit context), server URL, bearer
``token`` / ``tokenFile``, client certificate and key as data or files,
``certificate-authority`` data or file, ``insecure-skip-tls-verify`` and
``tls-server-name``. Relative file paths are resolved against the kubeconfig's
directory, as kubectl does. Exec and auth-provider plugins are refused with a
clear :class:`ConfigError`.

In a pod, the service account token, CA and namespace come from
``/var/run/secrets/kubernetes.io/serviceaccount`` and the server from
``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubeclient.errors import ConfigError

__all__ = ["SERVICE_ACCOUNT_DIR", "ClusterConfig", "load_in_cluster", "load_kubeconfig"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(slots=True)
class ClusterConfig:
    """Where the API server is and how to authenticate to it."""

    server: str
    token: str | None = None
    token_file: Path | None = None
    ca_data: bytes | None = None  # PEM
    cert_data: bytes | None = None  # PEM
    key_data: bytes | None = None  # PEM
    insecure: bool = False
    tls_server_name: str | None = None
    namespace: str = "default"
    username: str | None = None
    password: str | None = None

    _token_read_at: float = 0.0

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The TLS context for an https server; ``True`` (default) otherwise."""
        if not self.server.startswith("https"):
            return True
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            try:
                ctx.load_verify_locations(cadata=self.ca_data.decode())
            except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
                raise ConfigError(f"certificate-authority is not valid PEM: {exc}") from exc
        if self.cert_data and self.key_data:
            _load_cert_chain(ctx, self.cert_data, self.key_data)
        elif self.cert_data or self.key_data:
            raise ConfigError("client certificate and key must be given together")
        return ctx

    def current_token(self, *, reload_interval: float) -> str | None:
        """The bearer token, re-read from ``token_file`` every ``reload_interval`` s.

        Bound service-account tokens rotate on disk (about hourly), so a long
        running client must not keep the first one forever.
        """
        if self.token_file is not None:
            now = time.monotonic()
            if self.token is None or now - self._token_read_at >= reload_interval:
                try:
                    self.token = self.token_file.read_text().strip()
                except OSError as exc:
                    if self.token is None:
                        raise ConfigError(f"cannot read token file {self.token_file}") from exc
                self._token_read_at = now
        return self.token


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl only loads client certs from files: write them to private temp files
    # that exist just for the duration of the call.
    with tempfile.TemporaryDirectory(prefix="kubeclient-") as tmp:
        cert_path = Path(tmp, "client.crt")
        key_path = Path(tmp, "client.key")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"client certificate/key not usable: {exc}") from exc


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{what} is not valid base64") from exc


def _read(path_value: Any, base: Path, what: str) -> bytes:
    path = Path(str(path_value)).expanduser()
    if not path.is_absolute():
        path = base / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(what)
            return body if isinstance(body, dict) else {}
    raise ConfigError(f"kubeconfig has no {what} named {name!r}")


def load_kubeconfig(path: str | os.PathLike[str], *, context: str | None = None) -> ClusterConfig:
    """Parse a kubeconfig file into a :class:`ClusterConfig`.

    Args:
        path: the kubeconfig file.
        context: the context to use; default: ``current-context``.

    Raises:
        ConfigError: unreadable file, missing context/cluster/user, bad data,
            or an authentication method this client does not support.
    """
    file = Path(path).expanduser()
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {file}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"kubeconfig {file} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"kubeconfig {file} is not a mapping")
    base = file.parent
    ctx_name = context or raw.get("current-context")
    if not ctx_name:
        raise ConfigError(f"kubeconfig {file} has no current-context")
    ctx = _named(raw.get("contexts"), str(ctx_name), "context")
    cluster = _named(raw.get("clusters"), str(ctx.get("cluster", "")), "cluster")
    user: dict[str, Any] = {}
    if ctx.get("user"):
        user = _named(raw.get("users"), str(ctx["user"]), "user")

    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith(("http://", "https://")):
        raise ConfigError(f"cluster server {server!r} is not an http(s) URL")
    cfg = ClusterConfig(server=server, namespace=str(ctx.get("namespace") or "default"))
    cfg.insecure = bool(cluster.get("insecure-skip-tls-verify", False))
    cfg.tls_server_name = cluster.get("tls-server-name") or None
    if cluster.get("certificate-authority-data"):
        cfg.ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data")
    elif cluster.get("certificate-authority"):
        cfg.ca_data = _read(cluster["certificate-authority"], base, "certificate-authority")

    if "exec" in user or "auth-provider" in user:
        raise ConfigError(
            "kubeconfig user uses an exec/auth-provider plugin, which kubeclient does not "
            "run; use a token or a client certificate"
        )
    if user.get("token"):
        cfg.token = str(user["token"])
    elif user.get("tokenFile"):
        tf = Path(str(user["tokenFile"])).expanduser()
        cfg.token_file = tf if tf.is_absolute() else base / tf
    if user.get("client-certificate-data"):
        cfg.cert_data = _b64(user["client-certificate-data"], "client-certificate-data")
    elif user.get("client-certificate"):
        cfg.cert_data = _read(user["client-certificate"], base, "client-certificate")
    if user.get("client-key-data"):
        cfg.key_data = _b64(user["client-key-data"], "client-key-data")
    elif user.get("client-key"):
        cfg.key_data = _read(user["client-key"], base, "client-key")
    if user.get("username"):
        cfg.username = str(user["username"])
        cfg.password = str(user.get("password") or "")
    # Fail now, not at the first request, when the TLS material is broken.
    cfg.ssl_context()
    return cfg


def load_in_cluster(
    *, sa_dir: Path = SERVICE_ACCOUNT_DIR, environ: dict[str, str] | None = None
) -> ClusterConfig:
    """The config a pod gets from its service account.

    Raises:
        ConfigError: not running in a pod (no service host env or token file).
    """
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST")
    port = env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST is not set")
    token_file = sa_dir / "token"
    if not token_file.is_file():
        raise ConfigError(f"not in a cluster: {token_file} does not exist")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    cfg = ClusterConfig(server=f"https://{host}:{port}", token_file=token_file)
    ca = sa_dir / "ca.crt"
    if ca.is_file():
        cfg.ca_data = ca.read_bytes()
    with contextlib.suppress(OSError):
        cfg.namespace = (sa_dir / "namespace").read_text().strip() or "default"
    cfg.current_token(reload_interval=0)
    return cfg
