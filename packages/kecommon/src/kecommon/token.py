"""The KubeEdge join token (protocol.md 5.2, ``pkg/security/token/token.go``).

A token is ``<caHash>.<JWT>``: ``caHash`` is the lowercase hex SHA-256 of the
CA certificate's DER bytes and the JWT is HS256 with the single claim ``exp``
= now + 2 x ``tokenRefreshDuration`` hours, keyed by the CA private key's DER
bytes. The edge checks ``caHash`` against the CA it downloads (so it can trust
``/ca.crt`` fetched without verification); cloudhub checks the JWT that the edge
then sends as ``Authorization: Bearer <JWT>``.

Pure: time is passed in as ``now`` (seconds since the epoch). Every refusal is a
:class:`TokenError` subclass whose message is the reason given to the client.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt

__all__ = [
    "TokenBadSignature",
    "TokenError",
    "TokenExpired",
    "TokenMalformed",
    "TokenWrongCA",
    "bearer_jwt",
    "ca_hash",
    "create_jwt",
    "create_token",
    "split_token",
    "verify_ca",
    "verify_jwt",
    "verify_token",
]

# KubeEdge parses with any HMAC method (``SigningMethodHMAC``); so do we, but
# nothing else: "none" and asymmetric algorithms would let a forger choose.
_HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"]


class TokenError(Exception):
    """A token or bearer JWT was refused; the message is the reason."""


class TokenMalformed(TokenError):
    pass


class TokenExpired(TokenError):
    pass


class TokenBadSignature(TokenError):
    """The JWT was not signed with this CA's key (forged, or another cluster's)."""


class TokenWrongCA(TokenError):
    """The token's CA hash does not match the CA certificate."""


def ca_hash(ca_der: bytes) -> str:
    """Lowercase hex SHA-256 of the CA certificate DER."""
    return hashlib.sha256(ca_der).hexdigest()


def create_jwt(ca_key_der: bytes, *, refresh_hours: float, now: float | None = None) -> str:
    """The HS256 JWT with ``exp`` = now + 2 x ``refresh_hours`` hours."""
    if refresh_hours <= 0:
        raise ValueError(f"tokenRefreshDuration must be positive, got {refresh_hours}")
    issued = time.time() if now is None else now
    exp = int(issued + 2 * refresh_hours * 3600)
    return jwt.encode({"exp": exp}, ca_key_der, algorithm="HS256")


def create_token(
    ca_der: bytes, ca_key_der: bytes, *, refresh_hours: float, now: float | None = None
) -> str:
    """The join token ``<sha256 hex of CA DER>.<JWT>``."""
    return f"{ca_hash(ca_der)}.{create_jwt(ca_key_der, refresh_hours=refresh_hours, now=now)}"


def split_token(token: str) -> tuple[str, str]:
    """Split a token into its CA hash and its JWT.

    Raises:
        TokenMalformed: the token does not have exactly four dot-separated parts.
    """
    parts = token.strip().split(".")
    if len(parts) != 4 or not all(parts):
        raise TokenMalformed("the token must be <caHash>.<JWT> (four dot-separated parts)")
    return parts[0], ".".join(parts[1:])


def verify_ca(token: str, ca_der: bytes) -> str:
    """Edge side: check the downloaded CA against the token; return the JWT.

    Raises:
        TokenMalformed, TokenWrongCA.
    """
    want, real = split_token(token)
    if not hmac.compare_digest(want.lower(), ca_hash(ca_der)):
        raise TokenWrongCA("the token's CA hash does not match the cloud's CA certificate")
    return real


def verify_jwt(token_jwt: str, ca_key_der: bytes, *, now: float | None = None) -> int:
    """Cloud side: verify a bearer JWT; return its ``exp``.

    Raises:
        TokenMalformed: not a JWT, not an HMAC JWT, or no integer ``exp``.
        TokenBadSignature: not signed with this CA's key.
        TokenExpired: ``exp`` is in the past.
    """
    try:
        header = jwt.get_unverified_header(token_jwt)
    except jwt.PyJWTError as exc:
        raise TokenMalformed(f"the token is not a JWT: {exc}") from exc
    if header.get("alg") not in _HMAC_ALGORITHMS:
        raise TokenMalformed(f"the token's algorithm {header.get('alg')!r} is not HMAC")
    try:
        # exp is checked below against the injected clock, not PyJWT's.
        claims = jwt.decode(
            token_jwt,
            ca_key_der,
            algorithms=_HMAC_ALGORITHMS,
            options={"verify_exp": False, "require": ["exp"]},
        )
    except jwt.InvalidSignatureError as exc:
        raise TokenBadSignature(
            "the token was not issued by this cloudcore (bad signature)"
        ) from exc
    except jwt.PyJWTError as exc:
        raise TokenMalformed(f"the token is not valid: {exc}") from exc
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TokenMalformed("the token's exp claim is not a number")
    moment = time.time() if now is None else now
    if moment >= exp:
        raise TokenExpired("the token has expired")
    return int(exp)


def verify_token(token: str, ca_der: bytes, ca_key_der: bytes, *, now: float | None = None) -> int:
    """Verify a full join token against the CA and its key; return ``exp``."""
    return verify_jwt(verify_ca(token, ca_der), ca_key_der, now=now)


def bearer_jwt(authorization: str | None) -> str:
    """The JWT of an ``Authorization: Bearer <jwt>`` header (``verifyAuthorization``).

    Raises:
        TokenMalformed: the header is missing or not ``Bearer <jwt>``.
    """
    if not authorization:
        raise TokenMalformed("the Authorization header is missing")
    parts = authorization.split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1]:
        raise TokenMalformed("the Authorization header must be 'Bearer <token>'")
    return parts[1]
