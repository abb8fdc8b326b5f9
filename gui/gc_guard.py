"""Python's cyclic garbage collector runs on the GUI thread only, while worker threads run.

A collection runs in whichever thread happens to allocate when a generation fills up. A worker's
model work allocates the most, so without this guard it is a worker that frees the window's
garbage: pyqtgraph's menus and view boxes, closed dialogs and their widgets, Qt objects kept in
reference cycles. Destroying a widget outside the GUI thread is undefined behaviour in Qt; here it
can deadlock the process with the GIL held, where no Python-level timeout can end it.

:func:`hold` (called by :func:`~.worker.start_worker` as a worker starts) turns automatic
collection off and starts a timer on the GUI thread that collects the young generations when the
collector's own thresholds say they are due. A full collection scans every object (a large share
of a second with torch and a model loaded), so the timer runs one at most every
:data:`FULL_EVERY_S` while workers run. :func:`release` (called as the worker's thread ends)
turns automatic collection back on once no worker is left.
"""

from __future__ import annotations

import gc
import threading
import time

from PySide6.QtCore import QTimer

INTERVAL_MS = 250
"""How often the GUI thread checks whether a generation is due while workers run."""
FULL_EVERY_S = 60.0
"""The least time between two full collections on the GUI thread while workers run."""

_holds = 0
_enabled_before = True
_timer: QTimer | None = None
_last_full = 0.0


def collect_due(full_every: float | None = None) -> int:
    """Collect the oldest generation whose count passed its threshold (with the younger ones).

    The oldest generation is collected only when ``full_every`` seconds (default
    :data:`FULL_EVERY_S`) have passed since the last full collection; until then the middle one
    is. Returns the number of unreachable objects found.
    """
    global _last_full
    counts = gc.get_count()
    thresholds = gc.get_threshold()
    due = -1
    for generation in range(3):
        if thresholds[generation] <= 0 or counts[generation] <= thresholds[generation]:
            break
        due = generation
    if due < 0:
        return 0
    now = time.monotonic()
    if due == 2:
        if now - _last_full < (FULL_EVERY_S if full_every is None else full_every):
            due = 1
        else:
            _last_full = now
    return gc.collect(due)


def hold() -> None:
    """A worker starts: collect only on the GUI thread until every holder has released."""
    global _holds, _enabled_before, _timer, _last_full
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("gc_guard.hold() must be called on the GUI thread")
    if _holds == 0:
        _enabled_before = gc.isenabled()
        gc.disable()
        _last_full = time.monotonic()
        if _timer is None:
            _timer = QTimer()
            _timer.setObjectName("speechquant-gc")
            _timer.setInterval(INTERVAL_MS)
            _timer.timeout.connect(collect_due)
        _timer.start()
    _holds += 1


def release() -> None:
    """A worker's thread has ended: automatic collection resumes once none holds it."""
    global _holds
    if _holds == 0:
        return
    _holds -= 1
    if _holds == 0:
        if _timer is not None:
            _timer.stop()
        if _enabled_before:
            gc.enable()


def holders() -> int:
    """How many running workers hold automatic collection off."""
    return _holds
