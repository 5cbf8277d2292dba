"""Ownership checks for node authorization: the kubeclient-backed index
against devkube, alone and through the session manager."""

from __future__ import annotations

import asyncio
from typing import Any

import kubeclient
from beehive.context import Context
from cloudcore.cloudhub.nodeindex import KubeNodeObjectIndex
from cloudcore.cloudhub.sessions import SessionManager, SessionSettings
from cloudhub_delivery.helpers import up
from cloudhub_delivery.memconn import MemConnection
from cloudhub_delivery.podspec import POD_SPEC


async def test_kube_index_and_admission_through_the_session(kube_api: Any) -> None:
    client = await kubeclient.KubeClient.from_kubeconfig(kube_api.kubeconfig)
    try:
        ns = await kube_api.make_namespace("authz")
        mine = await kube_api.make_node("edge")
        other = await kube_api.make_node("edge")
        for name, node in (("p-mine", mine), ("p-other", other)):
            await client.create(
                kubeclient.PODS,
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name},
                    "spec": {**POD_SPEC, "nodeName": node}
                    if node == mine
                    else {
                        "nodeName": node,
                        "containers": [{"name": "c", "image": "busybox"}],
                        "volumes": [{"name": "x", "configMap": {"name": "cm-theirs"}}],
                    },
                },
                namespace=ns,
            )
        index = KubeNodeObjectIndex(client)
        assert await index.pod_bound(mine, ns, "p-mine")
        assert not await index.pod_bound(mine, ns, "p-other")
        assert not await index.pod_bound(mine, ns, "missing")
        assert await index.pod_exists(ns, "p-other")
        assert not await index.pod_exists(ns, "missing")
        assert await index.configmap_referenced(mine, ns, "cm-proj")
        assert not await index.configmap_referenced(mine, ns, "cm-theirs")
        assert await index.configmap_referenced(other, ns, "cm-theirs")
        assert await index.secret_referenced(mine, ns, "pull")
        assert not await index.secret_referenced(other, ns, "pull")
        assert await index.serviceaccount_referenced(mine, ns, "runner")
        assert not await index.serviceaccount_referenced(mine, ns, "default")
        assert await index.serviceaccount_referenced(other, ns, "default")

        # the session manager builds this index from the client by default
        ctx = Context()
        ctx.add_module("edgecontroller", "edgecontroller")
        manager = SessionManager(SessionSettings(keepalive_interval=None), kube=client)
        pump = asyncio.create_task(manager.run(ctx))
        await asyncio.wait_for(manager.wait_ready(), 5)
        conn = MemConnection(mine)
        assert await manager.on_connect(conn)
        await ctx.receive("edgecontroller")  # the connected notice
        await manager.on_message(conn, up("query", f"{ns}/secret/sec-envfrom"))
        await manager.on_message(conn, up("patch", f"{ns}/podpatch/p-mine", content="{}"))
        passed = [(await ctx.receive("edgecontroller")).resource for _ in range(2)]
        assert passed == [
            f"node/{mine}/{ns}/secret/sec-envfrom",
            f"node/{mine}/{ns}/podpatch/p-mine",
        ]
        for resource in (f"{ns}/configmap/cm-theirs", f"{ns}/podpatch/p-other"):
            req = up("query", resource)
            await manager.on_message(conn, req)
            err = await conn.next_frame()
            assert (err.operation, err.parent_id) == ("error", req.msg_id)
        assert ctx.queue_depth("edgecontroller") == 0
        await manager.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
    finally:
        await client.close()
