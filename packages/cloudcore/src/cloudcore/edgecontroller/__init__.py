"""edgecontroller: pods, configmaps, secrets and nodes between the API and the edges.

See :mod:`cloudcore.edgecontroller.controller` for the module and
:mod:`~cloudcore.edgecontroller.downstream` / :mod:`~cloudcore.edgecontroller.upstream`
for the two directions (KubeEdge ``cloud/pkg/edgecontroller``).
"""

from __future__ import annotations

from cloudcore.edgecontroller.controller import EdgeController, mark_node_unknown
from cloudcore.edgecontroller.locator import NodeLocator, ObjRef, pod_references
from cloudcore.edgecontroller.objectindex import InformerNodeObjectIndex
from cloudcore.edgecontroller.settings import EdgeControllerSettings

__all__ = [
    "EdgeController",
    "EdgeControllerSettings",
    "InformerNodeObjectIndex",
    "NodeLocator",
    "ObjRef",
    "mark_node_unknown",
    "pod_references",
]
