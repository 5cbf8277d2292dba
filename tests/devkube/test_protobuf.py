"""protobuf: the request bodies kubectl's typed generators send."""

from __future__ import annotations

import pytest
from devkube_raw import Raw

from devkube.protobuf import MAGIC, ProtobufError, decode, parse


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(number: int, key: str, value: bytes | str) -> bytes:
    return field(number, field(1, key) + field(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return MAGIC + field(1, type_meta) + field(2, raw) + field(3, "") + field(4, "")


def test_decode_configmap() -> None:
    meta = field(1, "cm") + field(2, "") + entry(11, "app", "x") + field(14, "f1") + field(7, 0)
    raw = field(1, meta) + entry(2, "k", "v") + entry(3, "b", b"\x00\x01")
    assert decode(envelope("v1", "ConfigMap", raw)) == {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "cm", "labels": {"app": "x"}, "finalizers": ["f1"]},
        "data": {"k": "v"}, "binaryData": {"b": "AAE="},
    }


def test_decode_token_request() -> None:
    spec = field(1, "aud") + field(4, 3600) + field(3, field(1, "Pod") + field(3, "p"))
    body = decode(envelope("authentication.k8s.io/v1", "TokenRequest", field(2, spec)))
    assert body["spec"] == {"audiences": ["aud"], "expirationSeconds": 3600,
                            "boundObjectRef": {"kind": "Pod", "name": "p"}}


@pytest.mark.parametrize("body", [
    b"not protobuf",
    MAGIC + b"\x0a\x05abc",  # truncated
    MAGIC + b"\x0b",  # wire type 3
    envelope("apps/v1", "Deployment", b""),
    MAGIC + b"\x0a" + b"\xff" * 11,
])
def test_rejects(body: bytes) -> None:
    with pytest.raises(ProtobufError):
        decode(body)


def test_parse_fixed_width_fields() -> None:
    assert parse(b"\x09" + b"\x01" * 8 + b"\x15" + b"\x02" * 4) == {
        1: [b"\x01" * 8], 2: [b"\x02" * 4]}


async def test_server_reads_protobuf_and_refuses_the_rest(raw: Raw) -> None:
    ns = envelope("v1", "Namespace", field(1, field(1, "proto-ns")))
    status, body = await raw.call("POST", "/api/v1/namespaces", data=ns,
                                  content_type="application/vnd.kubernetes.protobuf")
    assert status == 201 and body["status"]["phase"] == "Active"
    secret = envelope("v1", "Secret", field(1, field(1, "s")) + entry(2, "k", b"v"))
    status, body = await raw.call("POST", "/api/v1/namespaces/proto-ns/secrets", data=secret,
                                  content_type="application/vnd.kubernetes.protobuf")
    assert status == 201 and body["data"] == {"k": "dg=="} and body["type"] == "Opaque"
    status, body = await raw.call("POST", "/api/v1/namespaces/proto-ns/pods",
                                  data=envelope("v1", "Pod", b""),
                                  content_type="application/vnd.kubernetes.protobuf")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
