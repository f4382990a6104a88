"""The collector's settings for a process that polls or serves until stopped."""

from __future__ import annotations

import gc
from collections.abc import Coroutine, Iterator

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


def test_the_commands_that_run_until_stopped_set_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`tracker serve` as `tracker run`: its pauses held a thousand event streams back."""
    import argparse
    import contextlib
    from types import SimpleNamespace

    from tracker.cli import operating

    calls: list[str] = []

    @contextlib.contextmanager
    def tracker_for(args: argparse.Namespace) -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(settings=None, database=None)

    def run_event_loop(main: Coroutine[object, object, object]) -> None:
        calls.append("loop")
        main.close()

    monkeypatch.setattr(operating, "tracker_for", tracker_for)
    monkeypatch.setattr(operating, "run_event_loop", run_event_loop)
    monkeypatch.setattr(operating, "collect_garbage_for_a_long_run", lambda: calls.append("gc"))
    assert operating.serve(argparse.Namespace()) == 0
    assert calls == ["gc", "loop"]
