"""Randomised check of the list+watch contract at the API layer: a client that lists,
then applies watch events (with selectors, and resuming from its last resourceVersion
after dropping its watch) always ends up with exactly what a fresh list shows."""

from __future__ import annotations

import random
from typing import Any

import pytest

from devkube import errors, selectors
from devkube.api import PATCH_MERGE, Api
from devkube.resources import Registry
from devkube.store import Expired, Store, Watcher
from devkube.tokens import TokenIssuer


class Client:
    """An informer's cache fed by list + watch, resuming after disconnects."""

    def __init__(self, api: Api, namespace: str | None, selector: str) -> None:
        self.api = api
        self.info = api.info("", "v1", "configmaps")
        self.namespace = namespace
        self.labels = selectors.parse_labels(selector)
        self.cache: dict[tuple[str, str], str] = {}
        self.rv = 0
        self.watcher: Watcher | None = None
        self.relist()

    def relist(self) -> None:
        res = self.api.list_objects(self.info, self.namespace, self.labels, [])
        self.cache = {(o["metadata"]["namespace"], o["metadata"]["name"]):
                      o["metadata"]["resourceVersion"] for o in res.items}
        self.rv = res.rv
        self.watch()

    def watch(self) -> None:
        self.watcher = self.api.watch(self.info, self.namespace, self.labels, [], self.rv)

    def drain(self) -> None:
        assert self.watcher is not None
        while not self.watcher.queue.empty():
            item = self.watcher.queue.get_nowait()
            assert item is not None
            kind, ev = item
            key = (ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"])
            assert ev.rv > self.rv, "events arrive in resourceVersion order, once"
            self.rv = ev.rv
            if kind == "DELETED":
                assert key in self.cache
                del self.cache[key]
            else:
                assert (kind == "ADDED") == (key not in self.cache), (kind, key)
                self.cache[key] = ev.obj["metadata"]["resourceVersion"]

    def disconnect(self) -> None:
        assert self.watcher is not None
        self.drain()
        self.api.store.unwatch(self.watcher)
        self.watcher = None

    def truth(self) -> dict[tuple[str, str], str]:
        res = self.api.list_objects(self.info, self.namespace, self.labels, [])
        return {(o["metadata"]["namespace"], o["metadata"]["name"]):
                o["metadata"]["resourceVersion"] for o in res.items}


@pytest.mark.parametrize("seed", range(8))
def test_list_watch_converges(seed: int) -> None:
    rng = random.Random(seed)
    api = Api(Store(history=60), Registry(), TokenIssuer())
    ns_info = api.info("", "v1", "namespaces")
    cm = api.info("", "v1", "configmaps")
    for ns in ("a", "b"):
        api.create(ns_info, None, {"metadata": {"name": ns}})
    clients = [Client(api, None, ""), Client(api, "a", ""), Client(api, None, "app=x"),
               Client(api, "b", "app in (x,y),tier!=db")]
    names = [f"c{i}" for i in range(12)]
    relists = 0
    recorded: list[tuple[int, dict[tuple[str, str], str]]] = []
    for _ in range(1500):
        ns, name = rng.choice("ab"), rng.choice(names)
        labels: dict[str, Any] = {"app": rng.choice("xyz"), "tier": rng.choice(["db", "web"])}
        roll = rng.random()
        try:
            if roll < 0.3:
                api.create(cm, ns, {"metadata": {"name": name, "labels": labels}})
            elif roll < 0.75:
                api.patch(cm, ns, name, PATCH_MERGE,
                          {"metadata": {"labels": labels}, "data": {"n": str(rng.random())}})
            else:
                api.delete(cm, ns, name)
        except errors.ApiError as exc:
            assert exc.code in (404, 409)
        for c in clients:
            r = rng.random()
            if r < 0.05 and c.watcher is not None:
                c.disconnect()
            elif r < 0.02 and c.watcher is None:
                try:
                    c.watch()  # resume from the last resourceVersion seen
                except Expired:  # the history moved on: relist, as informers do
                    c.relist()
                    relists += 1
            elif c.watcher is not None:
                c.drain()
        if rng.random() < 0.02:
            listed = api.list_objects(cm, None, [], [])
            recorded.append((listed.rv, {(o["metadata"]["namespace"], o["metadata"]["name"]):
                                         o["metadata"]["resourceVersion"]
                                         for o in listed.items}))
    # Lists at an exact past resourceVersion reproduce what a list said back then.
    checked = 0
    for rv, state in recorded:
        try:
            past = api.list_objects(cm, None, [], [], exact_rv=rv)
        except errors.ApiError as exc:
            assert exc.code == 410 and rv < api.store.compacted
            continue
        assert {(o["metadata"]["namespace"], o["metadata"]["name"]):
                o["metadata"]["resourceVersion"] for o in past.items} == state
        checked += 1
    assert checked or not recorded
    for c in clients:
        if c.watcher is None:
            try:
                c.watch()
            except Expired:
                c.relist()
        c.drain()
        assert c.cache == c.truth()
    assert relists > 0  # the 410 path was exercised
