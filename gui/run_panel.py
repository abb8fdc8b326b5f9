"""The job bar (overall progress, ETA, run and cancel, the current step below) and the log."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .progress_model import OverallProgress


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


class RunPanel(QWidget):
    """Buttons and progress of the current job, and a log of what happened."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_button = QPushButton("▶ Run benchmark")
        self.run_button.setObjectName("runButton")
        self.run_button.setToolTip("Float baseline (cached) and the current plan on the dataset")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setEnabled(False)
        self.stage = QLabel("idle")
        self.stage.setObjectName("overallStage")
        self.stage.setMinimumWidth(160)
        self.stage.setMaximumWidth(320)
        self.step = QLabel("")
        self.step.setObjectName("stepStage")
        self.step.setStyleSheet("color: #555")
        self.step.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        self.eta = QLabel("")
        self.eta.setMinimumWidth(80)
        self.log = QPlainTextEdit()
        self.log.setObjectName("log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("Log: loads, runs, errors")
        self._overall = OverallProgress()

        bar = QHBoxLayout()
        bar.addWidget(self.run_button)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.stage)
        bar.addWidget(self.bar, 1)
        bar.addWidget(self.eta)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(bar)
        layout.addWidget(self.step)
        layout.addWidget(self.log, 1)

    def busy(self, what: str, cancellable: bool = True) -> None:
        self.stage.setText(what)
        self.bar.setRange(0, 0)
        self.eta.setText("")
        self.cancel_button.setEnabled(cancellable)
        self.run_button.setEnabled(False)
        self.step.setText("")
        self._overall = OverallProgress()

    def progress(self, done: int, total: int, stage: str) -> None:
        """Overall progress, ETA and the current step underneath (see :mod:`.progress_model`)."""
        view = self._overall.update(done, total, stage)
        self._elide(self.stage, view.overall)
        self.step.setText(view.step)
        if view.fraction is not None:
            self.bar.setTextVisible(True)
            self.bar.setFormat("%p %")
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(round(view.fraction * 1000)))
        else:
            self.bar.setRange(0, 0)
        self.eta.setText(format_eta(view.eta_seconds))

    @staticmethod
    def _elide(label: QLabel, text: str) -> None:
        """A long stage is cut with … (full text as tooltip), so it never squeezes the bar."""
        metrics = label.fontMetrics()
        label.setText(metrics.elidedText(text, Qt.TextElideMode.ElideRight, label.maximumWidth()))
        label.setToolTip(text)

    def idle(self, text: str = "idle", can_run: bool = True) -> None:
        self.stage.setText(text)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        self.eta.setText("")
        self.step.setText("")
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(can_run)

    def add_log(self, text: str, level: str = "info") -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        prefix = {"error": "ERROR ", "warning": "warning "}.get(level, "")
        self.log.appendPlainText(f"{stamp}  {prefix}{text}")
        self.log.ensureCursorVisible()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """The newest log line stays in view when the dock is resized."""
        bar = self.log.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 1
        super().resizeEvent(event)
        if at_end:
            bar.setValue(bar.maximum())
