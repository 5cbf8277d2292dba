"""The cache-first node index: caches once synced, the API until then."""

from __future__ import annotations

from cloudcore.cloudhub.nodeindex import CacheFirstNodeObjectIndex


class NotReady(RuntimeError):
    pass


class TableIndex:
    """A NodeObjectIndex over a fixed set of (method, node, ns, name) answers."""

    def __init__(self, yes: set[tuple[str, str, str, str]], *, ready: bool = True) -> None:
        self.yes = yes
        self.ready = ready
        self.calls = 0

    async def _answer(self, method: str, node: str, ns: str, name: str) -> bool:
        self.calls += 1
        if not self.ready:
            raise NotReady
        return (method, node, ns, name) in self.yes

    async def pod_bound(self, node: str, ns: str, name: str) -> bool:
        return await self._answer("pod_bound", node, ns, name)

    async def pod_exists(self, ns: str, name: str) -> bool:
        return await self._answer("pod_exists", "", ns, name)

    async def configmap_referenced(self, node: str, ns: str, name: str) -> bool:
        return await self._answer("configmap_referenced", node, ns, name)

    async def secret_referenced(self, node: str, ns: str, name: str) -> bool:
        return await self._answer("secret_referenced", node, ns, name)

    async def serviceaccount_referenced(self, node: str, ns: str, name: str) -> bool:
        return await self._answer("serviceaccount_referenced", node, ns, name)


async def test_unsynced_cache_falls_back_to_the_api() -> None:
    cache = TableIndex(set(), ready=False)
    api = TableIndex(
        {("pod_bound", "edge1", "default", "p"), ("secret_referenced", "edge1", "ns", "s")}
    )
    index = CacheFirstNodeObjectIndex(cache, api, not_ready=NotReady)
    assert await index.pod_bound("edge1", "default", "p")
    assert await index.secret_referenced("edge1", "ns", "s")
    assert not await index.pod_bound("edge2", "default", "p")
    assert api.calls == 3


async def test_synced_cache_is_final_and_spares_the_api() -> None:
    cache = TableIndex({("configmap_referenced", "edge1", "ns", "cm")})
    api = TableIndex({("serviceaccount_referenced", "edge1", "ns", "default")})
    index = CacheFirstNodeObjectIndex(cache, api, not_ready=NotReady)
    assert await index.configmap_referenced("edge1", "ns", "cm")
    # The API would say yes, but a synced cache's "no" stands.
    assert not await index.serviceaccount_referenced("edge1", "ns", "default")
    assert api.calls == 0


async def test_pod_exists_is_cache_first_too() -> None:
    """Asked for a pod delete the node does not own: the cache answers once synced."""
    api = TableIndex({("pod_exists", "", "default", "p")})
    unsynced = CacheFirstNodeObjectIndex(TableIndex(set(), ready=False), api, not_ready=NotReady)
    assert await unsynced.pod_exists("default", "p")
    assert api.calls == 1
    synced = CacheFirstNodeObjectIndex(
        TableIndex({("pod_exists", "", "default", "q")}), api, not_ready=NotReady
    )
    assert await synced.pod_exists("default", "q")
    assert not await synced.pod_exists("default", "p")
    assert api.calls == 1
