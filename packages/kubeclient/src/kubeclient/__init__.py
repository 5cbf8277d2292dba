"""kubeclient: the only package that talks HTTP to a Kubernetes API server.

A thin asyncio client on raw JSON dicts (aiohttp), with kubeconfig and
in-cluster configuration, one retry loop, three-layer watches and informers.

Public surface::

    client = await KubeClient.from_kubeconfig(path)      # or KubeClient.in_cluster()
    await client.get(PODS, "p", "ns"); await client.list(NODES, label_selector=...)
    await client.create / replace / patch / delete / watch
    Informer(client, PODS).start(); await informer.wait_synced()

Errors are in :mod:`kubeclient.errors` and re-exported here.
"""

from __future__ import annotations

from kubeclient import resources
from kubeclient.client import KubeClient, PatchType, WatchEvent
from kubeclient.config import ClusterConfig, load_in_cluster, load_kubeconfig
from kubeclient.errors import (
    AlreadyExists,
    ApiConnectionError,
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeClientError,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    WatchError,
)
from kubeclient.informer import Informer, object_key
from kubeclient.resources import (
    CLUSTEROBJECTSYNCS,
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CONFIGMAPS,
    CRDS,
    DEPLOYMENTS,
    DEVICEMODELS,
    DEVICES,
    DEVICESTATUSES,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    OBJECTSYNCS,
    PODS,
    ROLEBINDINGS,
    ROLES,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    ResourceRef,
    ref_for,
)
from kubeclient.settings import ClientSettings, RetrySettings, WatchSettings
from kubeclient.watching import Listed, continuous_watch, infinite_watch, list_all, with_type

__all__ = [
    "CLUSTEROBJECTSYNCS",
    "CLUSTERROLEBINDINGS",
    "CLUSTERROLES",
    "CONFIGMAPS",
    "CRDS",
    "DEPLOYMENTS",
    "DEVICEMODELS",
    "DEVICES",
    "DEVICESTATUSES",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "OBJECTSYNCS",
    "PODS",
    "ROLEBINDINGS",
    "ROLES",
    "SECRETS",
    "SERVICEACCOUNTS",
    "SERVICES",
    "AlreadyExists",
    "ApiConnectionError",
    "ApiError",
    "BadRequest",
    "ClientSettings",
    "ClusterConfig",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "Informer",
    "Invalid",
    "KubeClient",
    "KubeClientError",
    "Listed",
    "NotFound",
    "PatchType",
    "ResourceRef",
    "RetrySettings",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "WatchError",
    "WatchEvent",
    "WatchSettings",
    "continuous_watch",
    "infinite_watch",
    "list_all",
    "load_in_cluster",
    "load_kubeconfig",
    "object_key",
    "ref_for",
    "resources",
    "with_type",
]
