"""The job bar (stage, progress, ETA, run and cancel) and the log panel."""

from __future__ import annotations

import time
from datetime import datetime

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class EtaClock:
    """Estimates the time left in the current stage from its progress so far."""

    def __init__(self) -> None:
        self.stage = ""
        self.start = 0.0
        self.start_done = 0
        self.last_done = 0

    def update(self, done: int, total: int, stage: str, now: float | None = None) -> float | None:
        """Seconds left, or None while unknown."""
        now = time.monotonic() if now is None else now
        if stage != self.stage or done < self.last_done:
            self.stage, self.start, self.start_done = stage, now, done
        self.last_done = done
        steps = done - self.start_done
        if total <= 0 or steps <= 0 or done >= total:
            return None if done < total or total <= 0 else 0.0
        return (now - self.start) / steps * (total - done)


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
        self.stage.setMinimumWidth(220)
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
        self._clock = EtaClock()

        bar = QHBoxLayout()
        bar.addWidget(self.run_button)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.stage)
        bar.addWidget(self.bar, 1)
        bar.addWidget(self.eta)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(bar)
        layout.addWidget(self.log, 1)

    def busy(self, what: str, cancellable: bool = True) -> None:
        self.stage.setText(what)
        self.bar.setRange(0, 0)
        self.eta.setText("")
        self.cancel_button.setEnabled(cancellable)
        self.run_button.setEnabled(False)
        self._clock = EtaClock()

    def progress(self, done: int, total: int, stage: str) -> None:
        self.stage.setText(stage)
        if total > 0:
            self.bar.setTextVisible(True)
            self.bar.setFormat("%v / %m")
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)
        self.eta.setText(format_eta(self._clock.update(done, total, stage)))

    def idle(self, text: str = "idle", can_run: bool = True) -> None:
        self.stage.setText(text)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        self.eta.setText("")
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(can_run)

    def add_log(self, text: str, level: str = "info") -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        prefix = {"error": "ERROR ", "warning": "warning "}.get(level, "")
        self.log.appendPlainText(f"{stamp}  {prefix}{text}")
