"""devkube: an embedded Kubernetes API server for the demo and the tests.

Public surface: ``DevKube`` (``async with DevKube() as kube``: ``kube.url``,
``kube.token``, ``kube.kubeconfig``, ``kube.compact()``) and ``DevKubeThread`` (the same
on a background thread). See docs/devkube.md.
"""

from __future__ import annotations

from devkube.app import DevKube, DevKubeThread
from devkube.server import MAX_BODY_BYTES

__all__ = ["MAX_BODY_BYTES", "DevKube", "DevKubeThread"]
