"""selectors (pure) and the store's RV/history/watch invariants (no HTTP)."""

from __future__ import annotations

import pytest

from devkube import selectors
from devkube.store import Expired, Store


@pytest.mark.parametrize(("text", "labels", "want"), [
    ("", {}, True),
    ("a=1", {"a": "1"}, True),
    ("a=1", {"a": "2"}, False),
    ("a!=1", {}, True),
    ("a in (1, 2)", {"a": "2"}, True),
    ("a notin (1,2)", {"a": "3"}, True),
    ("a notin (1,2)", {"a": "1"}, False),
    ("a,!b", {"a": "x"}, True),
    ("a,!b", {"a": "x", "b": "y"}, False),
    ("example.com/role=edge", {"example.com/role": "edge"}, True),
])
def test_label_selectors(text: str, labels: dict[str, str], want: bool) -> None:
    reqs = selectors.parse_labels(text)
    assert selectors.labels_match(reqs, {"metadata": {"labels": labels}}) is want


@pytest.mark.parametrize("text", ["a in (1", "=x", "a=b=c", "a,,b", "a in 1)"])
def test_bad_label_selectors(text: str) -> None:
    with pytest.raises(selectors.SelectorError):
        selectors.parse_labels(text)


def test_field_selectors() -> None:
    allowed = ("metadata.name", "spec.nodeName", "spec.unschedulable")
    reqs = selectors.parse_fields("spec.nodeName=n1,metadata.name!=x", allowed)
    assert selectors.fields_match(reqs, {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}})
    assert not selectors.fields_match(reqs, {"metadata": {"name": "x"},
                                             "spec": {"nodeName": "n1"}})
    reqs = selectors.parse_fields("spec.nodeName==", allowed)
    assert selectors.fields_match(reqs, {"spec": {}})
    reqs = selectors.parse_fields("spec.unschedulable=true", allowed)
    assert selectors.fields_match(reqs, {"spec": {"unschedulable": True}})
    with pytest.raises(selectors.SelectorError):
        selectors.parse_fields("status.podIP=1", allowed)
    with pytest.raises(selectors.SelectorError):
        selectors.parse_fields("spec.nodeName", allowed)


def obj(name: str, rv: int, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "resourceVersion": str(rv), "labels": labels}}


def test_store_history_resume_and_compaction() -> None:
    store = Store(history=3)
    for i in range(5):
        store.put("/cm", "ns", f"o{i}", obj(f"o{i}", store.next_rv()))
    # Only the last 3 events are kept: resuming from before them is Expired.
    with pytest.raises(Expired):
        store.watch("/cm", None, None, since=2)
    w = store.watch("/cm", None, None, since=4)
    got = [w.queue.get_nowait()[1].rv for _ in range(w.queue.qsize())]
    assert got == [5, 6]
    store.compact()
    with pytest.raises(Expired):
        store.watch("/cm", None, None, since=5)
    store.watch("/cm", None, None, since=store.rv)  # the newest RV still resumes
    with pytest.raises(Expired):  # an RV from another (in-memory) incarnation
        store.watch("/cm", None, None, since=store.rv + 1)


def test_store_selector_transitions_and_shared_lines() -> None:
    store = Store()
    match = selectors.predicate(selectors.parse_labels("app=x"), [])
    w1 = store.watch("/cm", "ns", match, since=store.rv)
    w2 = store.watch("/cm", "ns", match, since=store.rv)
    store.put("/cm", "ns", "a", obj("a", store.next_rv()))
    store.put("/cm", "ns", "a", obj("a", store.next_rv(), app="x"))
    store.put("/cm", "ns", "a", obj("a", store.next_rv(), app="y"))
    store.put("/cm", "other", "a", obj("a", store.next_rv(), app="x"))
    kinds = [w1.queue.get_nowait() for _ in range(w1.queue.qsize())]
    assert [k for k, _ in kinds] == ["ADDED", "DELETED"]
    k2, ev2 = w2.queue.get_nowait()
    assert ev2 is kinds[0][1]  # one event object fanned out, not copied
    assert ev2.line(k2) is kinds[0][1].line("ADDED")  # and encoded once


def test_overflowing_watcher_ends_without_a_gap() -> None:
    store = Store(watch_queue=3)
    w = store.watch("/cm", None, None, since=store.rv)
    for i in range(5):
        store.put("/cm", "ns", f"o{i}", obj(f"o{i}", store.next_rv()))
    # Nothing half-delivered: the stream just ends, and the client resumes from the last
    # RV it saw, so the history replays every event it did not get.
    assert w.overflowed and w.queue.get_nowait() is None and w.queue.empty()
