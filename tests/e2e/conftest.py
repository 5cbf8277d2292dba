"""Fixtures for the full-stack end-to-end tests.

``edge_stack`` (module scope): one :class:`keadm.devstack.DevStack` per test
module - devkube (or the cluster of ``KUBEEDGE_TEST_KUBECONFIG``), a private
containerd with the local images, our cloudcore and our edgecore as real
processes - stopped at the end of the module. Tests in these modules run on the
module's event loop (``pytestmark`` sets ``loop_scope="module"``).

``stack_api`` (module scope): the ``kube_api`` fixture's :class:`KubeApi` for the
stack's cluster, for its namespace helpers. ``namespace`` (per test): a fresh
namespace; at the end of the test its pods are deleted and waited for (so the
edge node is clean for the next test), then the namespace is deleted.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

import kubeclient
from e2e.helpers import require_machine, stack_settings
from fixtures.apiserver import KubeApi, real_cluster
from keadm.devstack import DevStack, StackError


def _tails(stack: DevStack, lines: int = 30) -> str:
    out = []
    for title, path in stack.logs.items():
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        out.append(f"--- {title}: {path}\n" + "\n".join(text))
    return "\n".join(out)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def edge_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevStack]:
    require_machine()
    stack = DevStack(stack_settings(tmp_path_factory.mktemp("stack")))
    try:
        await stack.start()
    except StackError as exc:
        tails = _tails(stack)
        await stack.stop()
        pytest.fail(f"the stack did not start: {exc}\n{tails}")
    try:
        yield stack
    finally:
        await stack.stop()


@pytest.fixture(scope="module")
def stack_api(edge_stack: DevStack) -> Iterator[KubeApi]:
    assert edge_stack.kubeconfig is not None
    with tempfile.TemporaryDirectory(prefix="stack-api-") as tmp:
        api = real_cluster(edge_stack.kubeconfig, Path(tmp))
        api.is_real = not edge_stack.uses_devkube
        try:
            yield api
        finally:
            api.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def namespace(edge_stack: DevStack, stack_api: KubeApi) -> AsyncIterator[str]:
    ns = await stack_api.make_namespace("e2e")
    try:
        yield ns
    finally:
        kube = edge_stack.client()
        pods = await kube.list(kubeclient.PODS, namespace=ns)
        for pod in pods.get("items", []):
            name = pod["metadata"]["name"]
            try:
                await kube.delete(kubeclient.PODS, name, namespace=ns)
            except kubeclient.NotFound:
                continue
        for pod in pods.get("items", []):
            await edge_stack.wait_pod_gone(ns, pod["metadata"]["name"], timeout=60.0)
