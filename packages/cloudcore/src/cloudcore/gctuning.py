"""Garbage-collector settings for the cloudcore process.

With CPython's defaults (700, 10, 10) cloudcore spent 2.9 s in the cyclic
collector during a 10,000-pod burst (``python -m bench delivery_api``): the
informer caches and the sessions hold hundreds of thousands of containers, and
each full collection, triggered again every time the heap had grown by a
quarter, stopped the event loop for 150-430 ms while finding almost nothing
(docs/performance.md, "delivery"). Those stops were the tail of the
create -> edge latency.

Raising the young-generation threshold makes collections rarer (they still
happen, so reference cycles are still reclaimed; memory between collections
grows by at most that many container objects), and freezing what exists at
start-up (modules, configuration) keeps it out of every later full scan.
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "tune_gc"]

#: (young objects, young collections per middle, middle collections per full)
THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Apply :data:`THRESHOLDS` and freeze the objects alive now; call once at start."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
