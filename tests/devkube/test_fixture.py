"""The ``kube_api`` fixture every end-to-end suite uses."""

from __future__ import annotations

import yaml

from fixtures.apiserver import KubeApi, KubeApiError


async def test_kube_api_serves_and_cleans_up(kube_api: KubeApi) -> None:
    assert kube_api.kubeconfig.exists()
    cfg = yaml.safe_load(kube_api.kubeconfig.read_text())
    assert cfg["clusters"][0]["cluster"]["server"] == kube_api.server
    ns = await kube_api.make_namespace("fx")
    node = await kube_api.make_node("fx")
    got = await kube_api.request("GET", f"/api/v1/namespaces/{ns}")
    assert got["status"]["phase"] == "Active"
    assert (await kube_api.request("GET", f"/api/v1/nodes/{node}"))["metadata"]["name"] == node
    kube_api.cleanup()
    try:
        await kube_api.request("GET", f"/api/v1/nodes/{node}")
        raise AssertionError("node survived cleanup")
    except KubeApiError as exc:
        assert exc.status == 404
    if not kube_api.is_real:  # a real cluster takes a while to finish namespaces
        try:
            await kube_api.request("GET", f"/api/v1/namespaces/{ns}")
            raise AssertionError("namespace survived cleanup")
        except KubeApiError as exc:
            assert exc.status == 404


def test_kube_api_works_from_sync_tests(kube_api: KubeApi) -> None:
    versions = kube_api.request_sync("GET", "/api")
    assert versions["versions"] == ["v1"]


async def test_compaction_makes_old_watches_expire(kube_api: KubeApi) -> None:
    if not kube_api.can_compact:
        assert kube_api.is_real
        return
    ns = await kube_api.make_namespace("cmp")
    listed = await kube_api.request("GET", f"/api/v1/namespaces/{ns}/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    await kube_api.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                           {"metadata": {"name": "a"}})
    await kube_api.compact()
    import urllib.request

    req = urllib.request.Request(  # noqa: S310
        f"{kube_api.server}/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}",
        headers={"Authorization": f"Bearer {kube_api.token}"},
    )
    import asyncio
    import json

    def first_event() -> dict:
        with urllib.request.urlopen(req, context=kube_api.ssl_context, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.readline())

    event = await asyncio.to_thread(first_event)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
