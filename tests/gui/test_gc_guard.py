"""While a worker runs, cyclic garbage is collected on the GUI thread, never in the worker."""

from __future__ import annotations

import gc
import threading
import time
import weakref

from PySide6.QtWidgets import QMenu

from speechquant.gui import gc_guard
from speechquant.gui.worker import Worker, start_worker


class Cycle:
    """An object in a reference cycle that records the thread that finalizes it."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen
        self.me = self

    def __del__(self) -> None:
        self.seen.append(threading.current_thread().name)


def run_job(qtbot, fn):
    job = start_worker(Worker(fn, "gc-test"))
    with qtbot.waitSignal(job.done, timeout=60_000):
        pass
    return job


def test_a_worker_that_makes_garbage_never_collects_it(qtbot):
    seen: list[str] = []
    inside: list[bool] = []

    def job(progress, cancel):
        inside.append(gc.isenabled())
        for _ in range(20_000):  # enough to fill every generation several times
            Cycle(seen)
        time.sleep(2 * gc_guard.INTERVAL_MS / 1000)  # the GUI thread's timer collects meanwhile
        return None

    enabled = gc.isenabled()
    run_job(qtbot, job)
    gc.collect()
    assert len(seen) == 20_000
    assert set(seen) == {threading.main_thread().name}
    assert inside == [False]
    assert gc.isenabled() == enabled and gc_guard.holders() == 0


def test_the_gui_thread_collects_while_a_worker_runs(qtbot):
    seen: list[str] = []
    freed = threading.Event()

    class Noted(Cycle):
        def __del__(self) -> None:
            super().__del__()
            freed.set()

    def job(progress, cancel):
        kept = [[] for _ in range(2 * gc.get_threshold()[0])]  # the young generation is due
        if not freed.wait(10):
            raise AssertionError("nothing collected the garbage while the worker ran")
        return len(kept)

    outcomes: list[str] = []
    worker = Worker(job, "gc-test")
    worker.failed.connect(outcomes.append)
    Noted(seen)  # garbage made on the GUI thread, after hold() has collected what was there
    job_ = start_worker(worker)
    Noted(seen)
    with qtbot.waitSignal(job_.done, timeout=60_000):
        pass
    assert outcomes == []
    assert threading.main_thread().name in seen


class CycleMenu(QMenu):
    """A widget kept only by a reference cycle, as pyqtgraph's context menus are."""

    def __init__(self) -> None:
        super().__init__()
        self.me = self


def test_widgets_in_cycles_are_destroyed_on_the_gui_thread(qtbot):
    destroyed: list[str] = []

    def make_garbage() -> None:
        menu = CycleMenu()
        weakref.finalize(menu, lambda: destroyed.append(threading.current_thread().name))

    def job(progress, cancel):
        kept = [[] for _ in range(3 * gc.get_threshold()[0])]
        time.sleep(2 * gc_guard.INTERVAL_MS / 1000)
        return len(kept)

    gc.collect()
    job_ = start_worker(Worker(job, "gc-test"))
    make_garbage()  # made while the worker allocates: due in the worker's first collection
    with qtbot.waitSignal(job_.done, timeout=60_000):
        pass
    gc.collect()
    assert destroyed == [threading.main_thread().name]


def test_hold_and_release_nest_and_restore_the_previous_state(qapp):
    enabled = gc.isenabled()
    gc_guard.hold()
    gc_guard.hold()
    assert not gc.isenabled() and gc_guard.holders() == 2
    gc_guard.release()
    assert not gc.isenabled()
    gc_guard.release()
    assert gc.isenabled() == enabled and gc_guard.holders() == 0
    gc_guard.release()  # an extra release changes nothing
    assert gc_guard.holders() == 0


def _fill_every_generation(kept: list) -> None:
    """Counts above thresholds of 1: two middle and two young collections, then allocations."""
    gc.collect(1)
    gc.collect(1)
    gc.collect(0)
    gc.collect(0)
    kept.extend([] for _ in range(5))


def test_collect_due_follows_the_thresholds_and_spaces_full_collections(qapp):
    gc.collect()
    before = gc.get_threshold()
    was = gc.isenabled()
    gc.disable()
    kept: list = []
    try:
        gc.set_threshold(1000, 10, 10)
        seen: list[str] = []
        Cycle(seen)
        kept.extend([] for _ in range(1100))
        assert gc_guard.collect_due() >= 1  # the young generation was due
        assert seen == [threading.current_thread().name]
        assert gc_guard.collect_due() == 0  # nothing is due right after

        gc.set_threshold(1, 1, 1)
        _fill_every_generation(kept)
        gc_guard.collect_due(full_every=3600)  # a full collection is due but too soon
        assert gc.get_count()[2] == 3  # a middle collection counted one more
        _fill_every_generation(kept)
        gc_guard.collect_due(full_every=0)
        assert gc.get_count()[2] == 0  # the full collection ran
    finally:
        gc.set_threshold(*before)
        if was:
            gc.enable()
