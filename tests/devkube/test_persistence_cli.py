"""--data-dir keeps objects, the resourceVersion counter and the token across restarts;
the ``devkube serve`` command serves and writes a working kubeconfig."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import ssl
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from devkube import DevKube


async def test_restart_keeps_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with DevKube(data_dir=data, tls=False) as kube:
        token = kube.token
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
            async with s.post(f"{kube.url}/api/v1/namespaces/default/configmaps",
                              json={"metadata": {"name": "kept"}, "data": {"a": "1"}}) as r:
                assert r.status == 201
                kept = await r.json()
            async with s.post(f"{kube.url}/apis/apiextensions.k8s.io/v1/"
                              "customresourcedefinitions", json={
                                  "metadata": {"name": "things.ex.io"},
                                  "spec": {"group": "ex.io", "scope": "Cluster",
                                           "names": {"plural": "things", "kind": "Thing"},
                                           "versions": [{"name": "v1", "served": True,
                                                         "storage": True}]}}) as r:
                assert r.status == 201
            async with s.post(f"{kube.url}/apis/ex.io/v1/things",
                              json={"metadata": {"name": "t"}}) as r:
                assert r.status == 201
            async with s.post(f"{kube.url}/api/v1/namespaces",
                              json={"metadata": {"name": "brief"}}) as r:
                assert r.status == 201
            async with s.delete(f"{kube.url}/api/v1/namespaces/brief") as r:
                assert r.status == 200
    old_rv = int(kept["metadata"]["resourceVersion"])
    async with DevKube(data_dir=data, tls=False) as kube:
        assert kube.token == token
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
            async with s.get(f"{kube.url}/api/v1/namespaces/default/configmaps/kept") as r:
                assert await r.json() == kept
            async with s.get(f"{kube.url}/apis/ex.io/v1/things/t") as r:
                assert r.status == 200  # the CRD serves its kind again
            async with s.get(f"{kube.url}/api/v1/namespaces/brief") as r:
                assert r.status == 404  # deletions persist too
            async with s.post(f"{kube.url}/api/v1/namespaces/default/configmaps",
                              json={"metadata": {"name": "new"}}) as r:
                assert int((await r.json())["metadata"]["resourceVersion"]) > old_rv
            # History is not persisted: older resourceVersions are gone.
            async with s.get(f"{kube.url}/api/v1/configmaps",
                             params={"watch": "1", "resourceVersion": str(old_rv - 1)}) as r:
                first = await r.content.readline()
                assert b'"code":410' in first


async def test_serve_command(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc" / "config"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devkube", "serve", "--port", "0", "--kubeconfig",
        str(kubeconfig), "--tls", "--data-dir", str(tmp_path / "data"),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not kubeconfig.exists():
            assert proc.returncode is None, "devkube serve exited"
            assert time.monotonic() < deadline, "no kubeconfig written"
            await asyncio.sleep(0.05)
        cfg = yaml.safe_load(kubeconfig.read_text())
        cluster = cfg["clusters"][0]["cluster"]
        server = cluster["server"]
        token = cfg["users"][0]["user"]["token"]
        assert server.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s,
            s.get(f"{server}/api/v1/namespaces",
                  headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            assert r.status == 200
            names = [i["metadata"]["name"] for i in (await r.json())["items"]]
            assert "default" in names
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
