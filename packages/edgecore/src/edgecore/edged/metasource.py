"""What edged needs from ``edgecore.metaclient.MetaClient``.

edged talks to the cloud (and to the local store) only through metaclient,
which sends beehive messages to metamanager (protocol.md 6). The runtime layer
is typed against this Protocol so it runs with the real ``MetaClient`` and
with anything shaped like it; errors are metaclient's ``MetaError`` tree.
"""

from __future__ import annotations

from typing import Any, Protocol

from edgecore.metaclient import MetaAlreadyExists, MetaNotFound

__all__ = ["MetaSource", "is_already_exists", "is_not_found"]


class MetaSource(Protocol):
    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def get_service_account_token(
        self, namespace: str, sa: str, request: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def create_node(self, node: dict[str, Any]) -> dict[str, Any]: ...

    async def get_node(self, name: str) -> dict[str, Any]: ...

    async def patch_node_status(self, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...

    async def get_lease(self, name: str) -> dict[str, Any]: ...

    async def create_lease(self, lease: dict[str, Any]) -> dict[str, Any]: ...

    async def update_lease(self, lease: dict[str, Any]) -> dict[str, Any]: ...

    async def patch_pod_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def delete_pod(self, namespace: str, name: str, options: dict[str, Any]) -> None: ...

    async def list_pods(self) -> list[dict[str, Any]]: ...


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, MetaNotFound)


def is_already_exists(exc: BaseException) -> bool:
    return isinstance(exc, MetaAlreadyExists)
