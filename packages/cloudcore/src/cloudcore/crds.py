"""Install KubeEdge's CustomResourceDefinitions through kubeclient.

The YAML under ``deploy/crds/`` (``reliablesyncs/``, ``devices/``) is the
single source of truth; this module finds it, creates or updates each CRD and
waits until the API server serves the new resource (a LIST on it succeeds),
which works the same on devkube and on a real cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import yaml

import kubeclient

__all__ = ["CRD_GROUPS", "find_crd_dir", "install_crds", "load_crds"]

log = logging.getLogger(__name__)

#: sub-directories of ``deploy/crds``
CRD_GROUPS = ("reliablesyncs", "devices")


def find_crd_dir() -> Path:
    """``$KUBEEDGE_CRD_DIR``, or the ``deploy/crds`` of the source tree or working dir.

    Raises:
        FileNotFoundError: neither exists.
    """
    env = os.environ.get("KUBEEDGE_CRD_DIR")
    if env:
        return Path(env)
    # The source tree (imported from packages/cloudcore/src), then the working
    # directory (an installed cloudcore run from a checkout).
    for parent in [*Path(__file__).resolve().parents, Path.cwd()]:
        candidate = parent / "deploy" / "crds"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("deploy/crds not found; set KUBEEDGE_CRD_DIR")


def load_crds(
    groups: tuple[str, ...] = CRD_GROUPS, *, crd_dir: Path | None = None
) -> list[dict[str, Any]]:
    """The CRD documents of the given groups, in file-name order."""
    base = crd_dir or find_crd_dir()
    docs: list[dict[str, Any]] = []
    for group in groups:
        for path in sorted((base / group).glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    docs.append(doc)
    return docs


def _served_ref(crd: dict[str, Any]) -> kubeclient.ResourceRef:
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    return kubeclient.ResourceRef(
        spec["group"], version, spec["names"]["plural"], spec["names"]["kind"],
        spec.get("scope") == "Namespaced",
    )


async def install_crds(
    client: kubeclient.KubeClient,
    groups: tuple[str, ...] = CRD_GROUPS,
    *,
    crd_dir: Path | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Create (or update) the CRDs and wait until each resource is served.

    Returns:
        the names of the CRDs installed.

    Raises:
        TimeoutError: a resource was not served within ``timeout``.
        kubeclient.ApiError: the API server refused a CRD.
    """
    names: list[str] = []
    refs: list[kubeclient.ResourceRef] = []
    for crd in load_crds(groups, crd_dir=crd_dir):
        name = crd["metadata"]["name"]
        try:
            await client.create(kubeclient.CRDS, crd)
            log.info("created CRD %s", name)
        except kubeclient.AlreadyExists:
            current = await client.get(kubeclient.CRDS, name)
            body = dict(crd)
            body["metadata"] = dict(crd["metadata"])
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                await client.replace(kubeclient.CRDS, name, body)
                log.info("updated CRD %s", name)
            except kubeclient.Conflict:
                log.info("CRD %s changed concurrently; keeping the server's copy", name)
        names.append(name)
        refs.append(_served_ref(crd))
    async with asyncio.timeout(timeout):
        for ref in refs:
            while True:
                try:
                    await client.list(ref, limit=1)
                    break
                except (kubeclient.NotFound, kubeclient.ServerError):
                    await asyncio.sleep(0.1)
    return names
