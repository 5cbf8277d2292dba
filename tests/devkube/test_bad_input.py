"""Bad input answers the right Status error, and the server keeps serving."""

from __future__ import annotations

from devkube_raw import Raw, pod

from devkube import MAX_BODY_BYTES

NS = "/api/v1/namespaces/default"


async def still_serving(raw: Raw) -> None:
    assert (await raw.get("/healthz")) == (200, "ok")
    status, body = await raw.get(f"{NS}/configmaps")
    assert status == 200 and body["kind"] == "ConfigMapList"


async def test_malformed_json(raw: Raw) -> None:
    for data in (b"{not json", b"", b"[1, 2"):
        status, body = await raw.call("POST", f"{NS}/configmaps", data=data)
        assert status == 400 and body["reason"] == "BadRequest", body
        assert body["kind"] == "Status" and body["status"] == "Failure"
    status, body = await raw.call("POST", f"{NS}/configmaps", data=b"[1, 2]")
    assert status == 400
    status, body = await raw.patch(f"{NS}/pods/x", {"op": "add"}, kind="json")
    assert status in (400, 404)
    await still_serving(raw)


async def test_body_over_the_cap(raw: Raw) -> None:
    big = b'{"metadata":{"name":"big"},"data":{"k":"' + b"x" * MAX_BODY_BYTES + b'"}}'
    status, body = await raw.call("POST", f"{NS}/configmaps", data=big)
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"
    assert str(MAX_BODY_BYTES) in body["message"]
    # Just under the cap is accepted.
    ok = b'{"metadata":{"name":"ok"},"data":{"k":"' + b"x" * (1024 * 1024) + b'"}}'
    status, _ = await raw.call("POST", f"{NS}/configmaps", data=ok)
    assert status == 201
    await still_serving(raw)


async def test_wrong_content_type(raw: Raw) -> None:
    status, body = await raw.call("POST", f"{NS}/configmaps", data=b"{}",
                                  content_type="text/plain")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "c"}})
    status, body = await raw.call("PATCH", f"{NS}/configmaps/c", data=b"{}",
                                  content_type="application/json")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    # Server-side apply without a fieldManager: kube's PatchOptions validation (422).
    status, body = await raw.call("PATCH", f"{NS}/configmaps/c", data=b"{}",
                                  content_type="application/apply-patch+yaml")
    assert status == 422 and body["reason"] == "Invalid"
    await still_serving(raw)


async def test_unknown_resource(raw: Raw) -> None:
    for path in (f"{NS}/widgets", "/apis/nope.io/v1/things", "/api/v2/pods",
                 f"{NS}/pods/p/exec", "/apis/nope.io", "/nothing"):
        status, body = await raw.get(path)
        assert status == 404 and body["reason"] == "NotFound", (path, body)
    status, body = await raw.get(f"{NS}/widgets")
    assert body["message"] == "the server could not find the requested resource"
    await still_serving(raw)


async def test_invalid_names(raw: Raw) -> None:
    status, body = await raw.post(f"{NS}/pods", pod("Bad_Name"))
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Pod "Bad_Name" is invalid: metadata.name: Invalid value')
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    status, body = await raw.post("/api/v1/namespaces", {"metadata": {"name": "a.b"}})
    assert status == 422  # namespaces are DNS-1123 labels: no dots
    status, body = await raw.post(f"{NS}/configmaps", {"metadata": {"name": "x" * 254}})
    assert status == 422
    status, body = await raw.post(f"{NS}/configmaps", {"metadata": {}})
    assert status == 422 and "name or generateName is required" in body["message"]
    await still_serving(raw)


async def test_mismatches(raw: Raw) -> None:
    status, body = await raw.post(f"{NS}/configmaps", {"kind": "Secret",
                                                      "metadata": {"name": "c"}})
    assert status == 400
    status, body = await raw.post(f"{NS}/configmaps",
                                  {"metadata": {"name": "c", "namespace": "kube-system"}})
    assert status == 400
    await raw.post(f"{NS}/configmaps", {"metadata": {"name": "c"}})
    status, body = await raw.put(f"{NS}/configmaps/c", {"metadata": {"name": "d"}})
    assert status == 400
    status, body = await raw.get(f"{NS}/configmaps", params={"limit": "many"})
    assert status == 400
    status, body = await raw.get(f"{NS}/configmaps",
                                 params={"watch": "1", "resourceVersion": "abc"})
    assert status == 400
    status, body = await raw.get(f"{NS}/configmaps", params={"continue": "!!!"})
    assert status == 400
    status, body = await raw.call("POST", f"{NS}/configmaps/c")
    assert status == 405 and body["reason"] == "MethodNotAllowed"
    await still_serving(raw)


async def test_deep_nesting_and_long_selectors(raw: Raw) -> None:
    deep = b'{"metadata":{"name":"d"},"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, body = await raw.call("POST", f"{NS}/configmaps", data=deep)
    assert status == 400 and body["reason"] == "BadRequest"
    status, body = await raw.get(f"{NS}/configmaps", params={"labelSelector": "a" * 4000 + " in"})
    assert status == 400
    await still_serving(raw)
