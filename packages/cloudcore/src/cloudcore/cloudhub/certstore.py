"""Where cloudcore's CA, server certificate and join token come from (protocol.md 5.1, 5.2).

Mirrors ``cloud/pkg/cloudhub/servers/httpserver/pre_server.go`` and
``pkg/security/token/token.go`` so that a KubeEdge installation's secrets are
reused by us and ours by it:

* CA: the PEM files ``tlsCAFile``/``tlsCAKeyFile`` if both exist; else Secret
  ``kubeedge/casecret`` (``cadata``/``cakeydata``, DER); else a new CA. The CA
  in use is always written back to ``casecret``.
* cloudcore certificate: the PEM files ``tlsCertFile``/``tlsPrivateKeyFile``
  if both exist; else Secret ``kubeedge/cloudcoresecret``
  (``cloudcoredata``/``cloudcorekeydata``, DER); else a new one with SANs
  from ``advertiseAddress`` and ``dnsNames``, written to the secret. A stored
  certificate that the CA did not sign is replaced (KubeEdge would serve it
  and every edge would reject it).
* token: ``kubeedge/tokensecret`` key ``tokendata``, regenerated every
  ``tokenRefreshDuration`` hours by :meth:`CertStore.run_token_refresher`.
  Every unexpired JWT signed by the CA key stays valid, as in KubeEdge.

The namespace ``kubeedge`` is created if missing. Without an API client (tests,
or a cloudcore run without a cluster) new material is written to the PEM files
instead, so that a restart keeps the same CA.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kecommon import certs, token

if TYPE_CHECKING:
    from kubeclient import KubeClient

__all__ = [
    "CA_SECRET",
    "CLOUDCORE_SECRET",
    "NAMESPACE",
    "TOKEN_SECRET",
    "CertStore",
    "CertStoreSettings",
]

log = logging.getLogger(__name__)

NAMESPACE = "kubeedge"
CA_SECRET = "casecret"
CLOUDCORE_SECRET = "cloudcoresecret"
TOKEN_SECRET = "tokensecret"
CA_DATA, CA_KEY_DATA = "cadata", "cakeydata"
CERT_DATA, CERT_KEY_DATA = "cloudcoredata", "cloudcorekeydata"
TOKEN_DATA = "tokendata"


@dataclass(frozen=True, slots=True)
class CertStoreSettings:
    """The cloudHub settings the store needs (names as in cloudcore.yaml)."""

    ca_file: Path = Path("/etc/kubeedge/ca/rootCA.crt")
    ca_key_file: Path = Path("/etc/kubeedge/ca/rootCA.key")
    cert_file: Path = Path("/etc/kubeedge/certs/server.crt")
    key_file: Path = Path("/etc/kubeedge/certs/server.key")
    advertise_address: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    token_refresh_hours: float = 12.0
    namespace: str = NAMESPACE

    @classmethod
    def from_cloudhub(cls, hub: Any) -> CertStoreSettings:
        """Build from ``cfg.modules.cloud_hub`` (kecommon.config)."""
        return cls(
            ca_file=Path(hub.tls_ca_file),
            ca_key_file=Path(hub.tls_ca_key_file),
            cert_file=Path(hub.tls_cert_file),
            key_file=Path(hub.tls_private_key_file),
            advertise_address=tuple(hub.advertise_address),
            dns_names=tuple(hub.dns_names),
            token_refresh_hours=float(hub.token_refresh_duration),
        )


@dataclass
class CertStore:
    """The CA, the cloudcore certificate and the current token, once loaded."""

    settings: CertStoreSettings
    ca: certs.CertPair
    server: certs.CertPair
    token: str
    kube: KubeClient | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def load(cls, settings: CertStoreSettings, kube: KubeClient | None = None) -> CertStore:
        """Load or create everything, in KubeEdge's order; see the module docstring.

        Raises:
            certs.CertError: a configured file or stored secret cannot be parsed.
        """
        sources: dict[str, str] = {}
        if kube is not None:
            await _ensure_namespace(kube, settings.namespace)
        ca = _load_pair(settings.ca_file, settings.ca_key_file)
        if ca is not None:
            sources["ca"] = f"files {settings.ca_file}, {settings.ca_key_file}"
        elif kube is not None and (
            ca := await _secret_pair(kube, settings.namespace, CA_SECRET, CA_DATA, CA_KEY_DATA)
        ):
            sources["ca"] = f"secret {settings.namespace}/{CA_SECRET}"
        else:
            ca = certs.new_ca()
            sources["ca"] = "generated"
            if kube is None:
                _write_pair(ca, settings.ca_file, settings.ca_key_file)
        if kube is not None:
            await _put_secret(
                kube, settings.namespace, CA_SECRET, {CA_DATA: ca.cert_der, CA_KEY_DATA: ca.key_der}
            )

        server = _load_pair(settings.cert_file, settings.key_file)
        if server is not None:
            sources["server"] = f"files {settings.cert_file}, {settings.key_file}"
        elif kube is not None and (
            server := await _secret_pair(
                kube, settings.namespace, CLOUDCORE_SECRET, CERT_DATA, CERT_KEY_DATA
            )
        ):
            sources["server"] = f"secret {settings.namespace}/{CLOUDCORE_SECRET}"
        if server is not None and not _issued_by(server, ca):
            log.warning(
                "the cloudcore certificate from %s is not signed by the CA; issuing a new one",
                sources["server"],
            )
            server = None
        if server is None:
            server = certs.new_server_cert(
                ca, advertise_address=settings.advertise_address, dns_names=settings.dns_names
            )
            sources["server"] = "generated"
            if kube is not None:
                await _put_secret(
                    kube,
                    settings.namespace,
                    CLOUDCORE_SECRET,
                    {CERT_DATA: server.cert_der, CERT_KEY_DATA: server.key_der},
                )
            else:
                _write_pair(server, settings.cert_file, settings.key_file)
        store = cls(settings, ca, server, token="", kube=kube, sources=sources)
        await store.refresh_token()
        log.info("CA from %s; cloudcore certificate from %s", sources["ca"], sources["server"])
        return store

    def new_token(self, *, now: float | None = None) -> str:
        return token.create_token(
            self.ca.cert_der,
            self.ca.key_der,
            refresh_hours=self.settings.token_refresh_hours,
            now=now,
        )

    async def refresh_token(self) -> str:
        """Make a new token and store it in ``tokensecret`` (when there is a cluster)."""
        self.token = self.new_token()
        if self.kube is not None:
            await _put_secret(
                self.kube, self.settings.namespace, TOKEN_SECRET, {TOKEN_DATA: self.token.encode()}
            )
        log.info("join token refreshed (valid %gh)", 2 * self.settings.token_refresh_hours)
        return self.token

    async def run_token_refresher(self) -> None:
        """Refresh the token every ``tokenRefreshDuration`` hours, until cancelled.

        A failed write (API server away) is retried after a minute rather than
        waiting a whole period, because edges read the token from the secret.
        """
        period = self.settings.token_refresh_hours * 3600
        delay = period
        while True:
            await asyncio.sleep(delay)
            try:
                await self.refresh_token()
                delay = period
            except Exception:
                log.exception("could not store the refreshed token; retrying in 60s")
                delay = min(60.0, period)

    def verify_bearer(self, authorization: str | None) -> None:
        """Check an ``Authorization: Bearer <jwt>`` header.

        Raises:
            token.TokenError: with the reason for a 401.
        """
        token.verify_jwt(token.bearer_jwt(authorization), self.ca.key_der)


# -- helpers -----------------------------------------------------------------------


def _issued_by(pair: certs.CertPair, ca: certs.CertPair) -> bool:
    try:
        pair.cert.verify_directly_issued_by(ca.cert)
    except Exception:  # InvalidSignature, ValueError, TypeError
        return False
    return True


def _load_pair(cert_file: Path, key_file: Path) -> certs.CertPair | None:
    if not (cert_file.is_file() and key_file.is_file()):
        return None
    try:
        cert = certs.cert_from_bytes(cert_file.read_bytes())
        key = certs.key_from_bytes(key_file.read_bytes())
    except certs.CertError as exc:
        raise certs.CertError(f"{cert_file} / {key_file}: {exc}") from exc
    if cert.public_key() != key.public_key():
        raise certs.CertError(f"{key_file} is not the key of {cert_file}")
    return certs.CertPair(cert, key)


def _write_pair(pair: certs.CertPair, cert_file: Path, key_file: Path) -> None:
    certs.write_file(cert_file, certs.cert_to_pem(pair.cert))
    certs.write_file(key_file, certs.key_to_pem(pair.key))
    log.info("wrote %s and %s", cert_file, key_file)


async def _ensure_namespace(kube: KubeClient, namespace: str) -> None:
    from kubeclient import NAMESPACES, AlreadyExists, NotFound

    try:
        await kube.get(NAMESPACES, namespace)
    except NotFound:
        try:
            await kube.create(
                NAMESPACES,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            )
            log.info("created namespace %s", namespace)
        except AlreadyExists:
            pass


async def _secret_pair(
    kube: KubeClient, namespace: str, name: str, cert_key: str, key_key: str
) -> certs.CertPair | None:
    from kubeclient import SECRETS, NotFound

    try:
        secret = await kube.get(SECRETS, name, namespace)
    except NotFound:
        return None
    data = secret.get("data") or {}
    if not data.get(cert_key) or not data.get(key_key):
        log.warning("secret %s/%s lacks %s/%s; ignoring it", namespace, name, cert_key, key_key)
        return None
    try:
        cert = certs.cert_from_bytes(base64.b64decode(data[cert_key]))
        key = certs.key_from_bytes(base64.b64decode(data[key_key]))
    except (certs.CertError, ValueError) as exc:
        raise certs.CertError(f"secret {namespace}/{name}: {exc}") from exc
    return certs.CertPair(cert, key)


async def _put_secret(kube: KubeClient, namespace: str, name: str, data: dict[str, bytes]) -> None:
    """Create or replace an Opaque secret holding ``data``."""
    from kubeclient import SECRETS, AlreadyExists, Conflict

    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }
    for _ in range(3):
        try:
            await kube.create(SECRETS, body, namespace)
            return
        except AlreadyExists:
            pass
        current = await kube.get(SECRETS, name, namespace)
        body["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        try:
            await kube.replace(SECRETS, name, body, namespace)
            return
        except Conflict:
            continue
    raise RuntimeError(f"could not write secret {namespace}/{name}: kept conflicting")
