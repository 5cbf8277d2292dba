"""kecommon.token pins protocol.md 5.2."""

from __future__ import annotations

import base64
import hashlib
import json

import jwt
import pytest

from kecommon import certs, token

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def ca() -> certs.CertPair:
    return certs.new_ca()


def _claims(t: str) -> dict[str, object]:
    body = t.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def test_token_format(ca: certs.CertPair) -> None:
    t = token.create_token(ca.cert_der, ca.key_der, refresh_hours=12, now=NOW)
    parts = t.split(".")
    assert len(parts) == 4
    assert parts[0] == hashlib.sha256(ca.cert_der).hexdigest()
    real = ".".join(parts[1:])
    assert jwt.get_unverified_header(real)["alg"] == "HS256"
    assert _claims(real) == {"exp": int(NOW + 24 * 3600)}
    # Keyed by the CA key's SEC1 DER bytes, as KubeEdge does.
    decoded = jwt.decode(real, ca.key_der, algorithms=["HS256"], options={"verify_exp": False})
    assert decoded["exp"] == int(NOW + 24 * 3600)


def test_verify_token_and_reasons(ca: certs.CertPair) -> None:
    t = token.create_token(ca.cert_der, ca.key_der, refresh_hours=1, now=NOW)
    assert token.verify_token(t, ca.cert_der, ca.key_der, now=NOW + 10) == int(NOW + 7200)
    with pytest.raises(token.TokenExpired, match="expired"):
        token.verify_token(t, ca.cert_der, ca.key_der, now=NOW + 7200)
    other = certs.new_ca()
    with pytest.raises(token.TokenWrongCA, match="CA hash"):
        token.verify_token(t, other.cert_der, other.key_der, now=NOW)
    # The right CA hash, but a JWT signed by another CA's key: forged.
    _, real = token.split_token(t)
    forged = token.create_jwt(other.key_der, refresh_hours=1, now=NOW)
    with pytest.raises(token.TokenBadSignature, match="bad signature"):
        token.verify_jwt(forged, ca.key_der, now=NOW)
    assert token.verify_ca(t, ca.cert_der) == real


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", "a..b.c", "h.a.b.c.d"])
def test_split_token_refuses_wrong_shape(bad: str) -> None:
    with pytest.raises(token.TokenMalformed, match="four"):
        token.split_token(bad)


def test_verify_jwt_refuses_non_hmac_and_garbage(ca: certs.CertPair) -> None:
    unsigned = jwt.encode({"exp": int(NOW + 60)}, key=None, algorithm="none")
    with pytest.raises(token.TokenMalformed, match="not HMAC"):
        token.verify_jwt(unsigned, ca.key_der, now=NOW)
    with pytest.raises(token.TokenMalformed, match="not a JWT"):
        token.verify_jwt("xx.yy.zz", ca.key_der, now=NOW)
    no_exp = jwt.encode({"sub": "x"}, ca.key_der, algorithm="HS256")
    with pytest.raises(token.TokenMalformed, match="exp"):
        token.verify_jwt(no_exp, ca.key_der, now=NOW)
    hs512 = jwt.encode({"exp": int(NOW + 60)}, ca.key_der, algorithm="HS512")
    assert token.verify_jwt(hs512, ca.key_der, now=NOW) == int(NOW + 60)


def test_bearer_header() -> None:
    assert token.bearer_jwt("Bearer a.b.c") == "a.b.c"
    for bad in [None, "", "Bearer", "Basic a.b.c", "Bearer a b", "Bearer  a"]:
        with pytest.raises(token.TokenMalformed):
            token.bearer_jwt(bad)


def test_refresh_must_be_positive(ca: certs.CertPair) -> None:
    with pytest.raises(ValueError, match="positive"):
        token.create_jwt(ca.key_der, refresh_hours=0)
