"""Help ▸ About this machine: the doctor's report (versions, CPU features, engines, scheme speeds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.evaluation.doctor import (
    DoctorReport,
    cached_report,
    format_report,
    run_doctor,
)

from .job_slot import JobSlot
from .worker import Worker

#: Starts ``fn(progress, cancel)`` as a job and calls ``on_result`` with its value; returns False
#: when another job holds the window's job slot.
StartJob = Callable[[Callable[..., Any], Callable[[Any], None]], bool]


class MachineDialog(QDialog):
    """Shows this machine's cached doctor report, or its description and a Measure button."""

    def __init__(self, start_job: StartJob, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About this machine")
        self.resize(760, 520)
        self._start_job = start_job
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.measure = QPushButton("Measure schemes here (about 10 s)")
        self.measure.clicked.connect(self.start_measuring)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.text)
        layout.addWidget(self.measure)
        layout.addWidget(buttons)
        report = cached_report()
        if report is None:
            self.show_report(run_doctor(measure=False))
            self.note.setText(
                "No measurement on this machine yet: press Measure to time float32 against "
                "every scheme here."
            )
        else:
            self.show_report(report)

    def show_report(self, report: DoctorReport) -> None:
        self.report = report
        self.text.setPlainText(format_report(report))
        if report.speeds:
            self.note.setText(f"Measured {report.measured_at} on this machine.")

    def start_measuring(self) -> None:
        def job(progress: Any, cancel: Any) -> DoctorReport:
            return run_doctor(refresh=True, progress=progress, cancel=cancel)

        if self._start_job(job, self.show_report):
            self.measure.setEnabled(False)
            self.note.setText("Measuring…")
        else:
            self.note.setText("Another job is running; measure when it has finished.")


def slot_starter(slot: JobSlot) -> StartJob:
    """A :data:`StartJob` that runs through the window's job slot (one job at a time)."""

    def start(fn: Callable[..., Any], on_result: Callable[[Any], None]) -> bool:
        if not slot.can_start():
            return False
        worker = Worker(fn, "doctor")
        worker.result.connect(on_result)
        return slot.start(worker, "measuring the schemes on this machine") is not None

    return start
