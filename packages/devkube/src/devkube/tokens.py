"""Service account tokens (the TokenRequest subresource): RS256 JWTs signed by a key
that devkube creates (and, with ``--data-dir``, keeps), shaped like kube-apiserver's
bound tokens (pkg/serviceaccount/claims.go)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://kubernetes.default.svc.cluster.local"


class TokenIssuer:
    """Signs and verifies service account tokens. The RSA key is made on first use
    (most test servers never issue a token) and kept in ``key_file`` when given."""

    def __init__(self, key_file: Path | None = None) -> None:
        self._key_file = key_file
        self._key: rsa.RSAPrivateKey | None = None
        if key_file is not None and key_file.exists():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{key_file}: not an RSA private key")
            self._key = key

    def _signing_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if self._key_file is not None:
                self._key_file.write_bytes(
                    self._key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                )
                self._key_file.chmod(0o600)
        return self._key

    def issue(
        self,
        *,
        namespace: str,
        sa_name: str,
        sa_uid: str,
        audiences: list[str],
        expiration_seconds: int,
        bound: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> tuple[str, int]:
        """Sign a token; returns (token, expiry as unix seconds)."""
        iat = int(now if now is not None else time.time())
        exp = iat + expiration_seconds
        private: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": sa_name, "uid": sa_uid},
        }
        if bound:
            kind = str(bound.get("kind", "")).lower()
            if kind in ("pod", "secret", "node"):
                private[kind] = {"name": bound.get("name", ""), "uid": bound.get("uid", "")}
        claims = {
            "aud": audiences,
            "exp": exp,
            "iat": iat,
            "nbf": iat,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "sub": f"system:serviceaccount:{namespace}:{sa_name}",
        }
        return jwt.encode(claims, self._signing_key(), algorithm="RS256"), exp

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token we issued and that has not expired, else None."""
        if self._key is None or token.count(".") != 2:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                issuer=ISSUER,
                options={"verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        return claims
