"""The window's one job slot: every long job (load, run, export, analysis, live transcription)
goes through it, so two jobs never change torch's process-wide engine and thread count at once.

A feature asks :meth:`JobSlot.can_start`, then :meth:`JobSlot.start` with its
:class:`~.worker.Worker`; the slot forwards the worker's progress, failure and cancel signals,
and ``busyChanged(False)`` follows the end of the worker's thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from .worker import Job, Worker, start_worker


class JobSlot(QObject):
    """At most one running job; ``refused(text)`` says why a start was turned down."""

    busyChanged = Signal(bool)
    started = Signal(str)
    """What the job does (``"exporting"``), when it starts."""
    progress = Signal(int, int, str)
    failed = Signal(str)
    cancelled = Signal(str, str)
    """(job name, what was kept) after a cancel took effect."""
    finished = Signal(str)
    """The job's name, once its thread has ended (after ``failed``/``cancelled``/``result``)."""
    refused = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job: Job | None = None
        self.what = ""

    @property
    def job(self) -> Job | None:
        return self._job

    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def name(self) -> str | None:
        """The running job's name (``"run"``, ``"live"`` …), None when idle."""
        return self._job.worker.name if self._job is not None else None

    def can_start(self, quiet: bool = False) -> bool:
        """True when idle; otherwise ``refused`` (unless ``quiet``) says what is running."""
        if self._job is None:
            return True
        if not quiet:
            self.refused.emit(
                f"a job is running ({self.what or self.name}); wait for it or cancel it first"
            )
        return False

    def start(self, worker: Worker, what: str) -> Job | None:
        """Start ``worker`` in its own thread; None (and ``refused``) while another job runs.

        Connect the worker's ``result`` (and any own signals) before calling this.
        """
        if not self.can_start():
            return None
        worker.progress.connect(self.progress)
        worker.failed.connect(self.failed)
        worker.cancelled.connect(self._cancelled)
        self.what = what
        self._job = start_worker(worker, on_done=self._done)
        self.started.emit(what)
        self.busyChanged.emit(True)
        return self._job

    def cancel(self) -> bool:
        """Ask the running job to stop at its next check; False when nothing runs."""
        if self._job is None:
            return False
        self._job.cancel()
        return True

    def wait(self, msecs: int = 60_000) -> bool:
        """Block until the running job's thread has ended (shutdown, tests)."""
        return self._job.wait(msecs) if self._job is not None else True

    @Slot()
    def _cancelled(self) -> None:
        job = self._job
        if job is not None:
            self.cancelled.emit(job.worker.name, job.worker.cancel_note)

    @Slot(object)
    def _done(self, job: Job) -> None:
        if job is not self._job:
            return
        self._job = None
        self.what = ""
        self.finished.emit(job.worker.name)
        self.busyChanged.emit(False)
