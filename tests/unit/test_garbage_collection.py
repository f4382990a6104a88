"""The collector's settings for a process that polls until stopped."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tracker.core.eventloop import collect_garbage_for_a_long_run


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_what_was_loaded_is_left_alone_and_young_objects_wait_for_a_larger_batch() -> None:
    collect_garbage_for_a_long_run()
    assert gc.get_freeze_count() > 1_000  # the modules loaded so far, at least
    assert gc.get_threshold()[0] >= 10_000
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1  # cyclic garbage is still collected
