"""cloudcore's collector settings: rarer young collections, start-up objects frozen."""

from __future__ import annotations

import gc

from cloudcore.gctuning import THRESHOLDS, tune_gc


def test_tune_gc_raises_the_thresholds_and_freezes_what_exists() -> None:
    before = gc.get_threshold()
    try:
        kept = [[i] for i in range(1000)]  # containers alive at start-up
        tune_gc()
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() >= len(kept)
        # collections still run and still reclaim cycles
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
