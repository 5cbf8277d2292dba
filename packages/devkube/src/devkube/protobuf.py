"""Decoding Kubernetes protobuf request bodies (pure) for the few kinds kubectl's typed
generators send: ``kubectl create namespace|configmap|secret|serviceaccount`` and
``kubectl create token``. Responses stay JSON (those clients accept it).

The envelope is k8s.io/apimachinery/pkg/runtime/serializer/protobuf: the magic
``k8s\\x00`` then a ``runtime.Unknown`` {typeMeta=1 {apiVersion=1, kind=2}, raw=2,
contentEncoding=3, contentType=4}; ``raw`` is the object in the field numbers of
k8s.io/api's generated.proto. Other kinds answer 415 as before.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devkube.errors import DevKubeError

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(DevKubeError, ValueError):
    """A body that is not a protobuf message we can read."""


Fields = dict[int, list[Any]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def parse(data: bytes) -> Fields:
    """Split a message into field number -> raw values (ints or bytes)."""
    fields: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ProtobufError("truncated field")
        fields.setdefault(number, []).append(value)
    return fields


def _str(v: Any) -> str:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a string")
    return v.decode()


def _int(v: Any) -> int:
    if not isinstance(v, int):
        raise ProtobufError("expected an integer")
    return v - (1 << 64) if v >= 1 << 63 else v


def _bool(v: Any) -> bool:
    return bool(_int(v))


def _b64(v: Any) -> str:
    if not isinstance(v, bytes):
        raise ProtobufError("expected bytes")
    return base64.b64encode(v).decode()


def _time(v: Any) -> str | None:
    f = parse(v)
    seconds = _int(f.get(1, [0])[-1])
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Spec = dict[int, tuple[str, Callable[[Any], Any], str]]  # number -> (name, decode, "1"|"*"|"map")


def message(spec: Spec) -> Callable[[Any], dict[str, Any]]:
    def decode(raw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for number, values in parse(raw).items():
            if number not in spec:
                continue  # fields we do not model are dropped
            name, conv, card = spec[number]
            value: Any
            if card == "*":
                value = [conv(v) for v in values]
            elif card == "map":
                value = {}
                for v in values:
                    e = parse(v)
                    value[_str(e.get(1, [b""])[-1])] = conv(e.get(2, [b""])[-1])
            else:
                value = conv(values[-1])
            # Go marshals zero values of non-pointer fields; JSON would omit them.
            if value not in (None, "", 0, False, [], {}):
                out[name] = value
        return out

    return decode


_owner_ref = message({
    1: ("kind", _str, "1"), 3: ("name", _str, "1"), 4: ("uid", _str, "1"),
    5: ("apiVersion", _str, "1"), 6: ("controller", _bool, "1"),
    7: ("blockOwnerDeletion", _bool, "1"),
})
_object_meta = message({
    1: ("name", _str, "1"), 2: ("generateName", _str, "1"), 3: ("namespace", _str, "1"),
    5: ("uid", _str, "1"), 6: ("resourceVersion", _str, "1"), 7: ("generation", _int, "1"),
    8: ("creationTimestamp", _time, "1"), 9: ("deletionTimestamp", _time, "1"),
    10: ("deletionGracePeriodSeconds", _int, "1"), 11: ("labels", _str, "map"),
    12: ("annotations", _str, "map"), 13: ("ownerReferences", _owner_ref, "*"),
    14: ("finalizers", _str, "*"),
})
_object_ref = message({
    1: ("kind", _str, "1"), 2: ("namespace", _str, "1"), 3: ("name", _str, "1"),
    4: ("uid", _str, "1"), 5: ("apiVersion", _str, "1"), 6: ("resourceVersion", _str, "1"),
    7: ("fieldPath", _str, "1"),
})
_local_ref = message({1: ("name", _str, "1")})

KINDS: dict[tuple[str, str], Callable[[Any], dict[str, Any]]] = {
    ("v1", "Namespace"): message({
        1: ("metadata", _object_meta, "1"),
        2: ("spec", message({1: ("finalizers", _str, "*")}), "1"),
        3: ("status", message({1: ("phase", _str, "1")}), "1"),
    }),
    ("v1", "ConfigMap"): message({
        1: ("metadata", _object_meta, "1"), 2: ("data", _str, "map"),
        3: ("binaryData", _b64, "map"), 4: ("immutable", _bool, "1"),
    }),
    ("v1", "Secret"): message({
        1: ("metadata", _object_meta, "1"), 2: ("data", _b64, "map"), 3: ("type", _str, "1"),
        4: ("stringData", _str, "map"), 5: ("immutable", _bool, "1"),
    }),
    ("v1", "ServiceAccount"): message({
        1: ("metadata", _object_meta, "1"), 2: ("secrets", _object_ref, "*"),
        3: ("imagePullSecrets", _local_ref, "*"), 4: ("automountServiceAccountToken", _bool, "1"),
    }),
    ("authentication.k8s.io/v1", "TokenRequest"): message({
        1: ("metadata", _object_meta, "1"),
        2: ("spec", message({
            1: ("audiences", _str, "*"), 4: ("expirationSeconds", _int, "1"),
            3: ("boundObjectRef", message({
                1: ("kind", _str, "1"), 2: ("apiVersion", _str, "1"), 3: ("name", _str, "1"),
                4: ("uid", _str, "1"),
            }), "1"),
        }), "1"),
    }),
}


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object as the JSON dict kube-apiserver would have read.

    Raises:
        ProtobufError: not a Kubernetes protobuf envelope, or a kind we do not read.
    """
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    unknown = parse(body[len(MAGIC):])
    type_meta = parse(unknown.get(1, [b""])[-1])
    api_version = _str(type_meta.get(1, [b""])[-1])
    kind = _str(type_meta.get(2, [b""])[-1])
    if unknown.get(3) and unknown[3][-1]:
        raise ProtobufError("compressed protobuf bodies are not supported")
    decoder = KINDS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"protobuf bodies of {api_version} {kind} are not supported")
    obj = decoder(unknown.get(2, [b""])[-1])
    return {"kind": kind, "apiVersion": api_version, **obj}
