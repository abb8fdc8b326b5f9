"""One long job (load, benchmark) in one worker object moved to a QThread.

The job is a plain function ``fn(progress, cancel)`` over core calls; the worker turns core's
``Progress`` callbacks into Qt signals. Signals: ``started()``, ``progress(int, int, str)``,
``result(object)`` (only when not cancelled), ``failed(str)``, ``cancelled()`` and ``finished()``
(always, from a ``finally``). Cancel is cooperative through a :class:`CancelToken`; a thread is
never terminated.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from speechquant.core.errors import Cancelled, SpeechquantError
from speechquant.core.progress import CancelToken, Progress

from . import gc_guard

log = logging.getLogger(__name__)

JobFn = Callable[[Callable[[Progress], None], CancelToken], Any]

_ACTIVE: set[QThread] = set()


def active_threads() -> list[QThread]:
    """Worker threads started by :func:`start_worker` that have not finished yet."""
    return [thread for thread in _ACTIVE if thread.isRunning()]


def error_text(exc: BaseException) -> str:
    """A one-line message: core's own for its errors, the type and first line otherwise."""
    if isinstance(exc, SpeechquantError):
        return str(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class Worker(QObject):
    """Runs ``fn(progress, cancel)`` once, in whatever thread it lives in."""

    started = Signal()
    progress = Signal(int, int, str)
    result = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: JobFn, name: str = "job", kept: list[str] | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.name = name
        self.token = CancelToken()
        self.kept = kept if kept is not None else []
        """What the job has stored so far (the job appends to it, e.g. "float baseline #3")."""
        self.default_note = "nothing was recorded for it"

    @property
    def cancel_note(self) -> str:
        """What the window logs after "<name> cancelled; "."""
        if self.kept:
            return f"kept {', '.join(self.kept)}"
        return self.default_note

    def cancel(self) -> None:
        """Ask the job to stop at its next check (between utterances or batches)."""
        self.token.cancel()

    def _report(self, update: Progress) -> None:
        self.progress.emit(int(update.done), int(update.total), str(update.stage))

    @Slot()
    def run(self) -> None:
        self.started.emit()
        try:
            value = self.fn(self._report, self.token)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # the app must survive any failure of a job
            if not isinstance(exc, SpeechquantError):
                log.error("%s failed:\n%s", self.name, traceback.format_exc())
            if self.token.cancelled:
                self.cancelled.emit()
            else:
                self.failed.emit(error_text(exc))
        else:
            if self.token.cancelled:
                self.cancelled.emit()
            else:
                self.result.emit(value)
        finally:
            self.finished.emit()


class Job(QObject):
    """A worker and its thread, kept alive together until the thread has finished.

    Created in the GUI thread, so ``done`` (and ``on_done``) run there.
    """

    done = Signal(object)

    def __init__(self, worker: Worker, thread: QThread) -> None:
        super().__init__()
        self.worker = worker
        self.qthread = thread

    @property
    def running(self) -> bool:
        return self.qthread.isRunning()

    def cancel(self) -> None:
        self.worker.cancel()

    def wait(self, msecs: int = 60_000) -> bool:
        """Block until the thread has ended (for shutdown and tests)."""
        return self.qthread.wait(msecs)

    @Slot()
    def _thread_ended(self) -> None:
        if self.qthread in _ACTIVE:
            _ACTIVE.discard(self.qthread)
            gc_guard.release()
        self.done.emit(self)


def start_worker(worker: Worker, on_done: Callable[[Job], None] | None = None) -> Job:
    """Move ``worker`` to a new QThread and start it; connect its signals before calling this.

    ``on_done(job)`` runs in the GUI thread once the thread has stopped. While the thread runs,
    garbage is collected on the GUI thread only (:mod:`.gc_guard`).
    """
    thread = QThread()
    thread.setObjectName(f"speechquant-{worker.name}")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # quit() is thread-safe; a direct call ends the thread even while the GUI thread waits on it
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    job = Job(worker, thread)
    thread.finished.connect(job._thread_ended)
    if on_done is not None:
        job.done.connect(on_done)
    _ACTIVE.add(thread)
    gc_guard.hold()
    thread.start()
    return job
