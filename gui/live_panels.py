"""The Microphone tab's lower half: the float and quantized transcript panes, and the row that
saves a recording with its typed reference into a user dataset."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.errors import SpeechquantError
from speechquant.core.live.recording import save_to_dataset, user_datasets
from speechquant.core.live.transcription import FLOAT, QUANTIZED, SegmentResult

DEFAULT_DATASET = "my-recordings"


class TranscriptPanes(QSplitter):
    """One read-only pane per model (float, quantized), each segment's text as it arrives."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.panes: dict[str, QPlainTextEdit] = {}
        self.boxes: dict[str, QGroupBox] = {}
        for name, title in ((FLOAT, "Float model"), (QUANTIZED, "Quantized model")):
            box = QGroupBox(title)
            pane = QPlainTextEdit()
            pane.setReadOnly(True)
            pane.setObjectName(f"{name}Transcript")
            QVBoxLayout(box).addWidget(pane)
            self.panes[name], self.boxes[name] = pane, box
            self.addWidget(box)

    def start(self, plan_name: str, quantized: bool) -> None:
        """Clear the panes for a new recording; say so when the plan quantizes nothing."""
        for pane in self.panes.values():
            pane.clear()
        self.boxes[QUANTIZED].setTitle(f"Quantized model — plan {plan_name}")
        if not quantized:
            self.panes[QUANTIZED].setPlainText(
                "The plan in the Plan tab quantizes nothing; choose a preset or schemes there."
            )

    def add(self, result: SegmentResult) -> None:
        span = f"[{result.start:.1f}–{result.start + result.duration:.1f} s]"
        for output in result.outputs:
            pane = self.panes.get(output.name)
            if pane is not None:
                pane.appendPlainText(
                    f"{span} {output.text or '…'}\n"
                    f"    latency {output.latency:.2f} s · RTF {output.rtf:.3f}"
                )


class SaveRow(QWidget):
    """Dataset [name ▾] [reference …] [Save to dataset]; ``said(text, level)`` reports."""

    said = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dataset = QComboBox()
        self.dataset.setEditable(True)
        self.dataset.setMinimumWidth(160)
        self.reference = QLineEdit()
        self.reference.setPlaceholderText("reference: type exactly what was said")
        self.save_button = QPushButton("Save to dataset")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Dataset"))
        row.addWidget(self.dataset)
        row.addWidget(self.reference, 1)
        row.addWidget(self.save_button)
        self.fill_datasets()

    def fill_datasets(self) -> None:
        current = self.dataset.currentText().strip() or DEFAULT_DATASET
        self.dataset.clear()
        names = user_datasets()
        self.dataset.addItems(names if current in names else [current, *names])
        self.dataset.setCurrentText(current)

    def save(self, audio: np.ndarray | None, sample_rate: int) -> str | None:
        """Save ``audio`` and the typed reference into the chosen dataset; the file, or None."""
        if audio is None or audio.size == 0:
            self.said.emit("nothing recorded yet", "error")
            return None
        name = self.dataset.currentText().strip()
        try:
            path = save_to_dataset(audio, sample_rate, self.reference.text(), name)
        except SpeechquantError as exc:
            self.said.emit(str(exc), "error")
            return None
        self.reference.clear()
        self.fill_datasets()
        self.said.emit(f"saved {path.name} to dataset {name}; use {path.parent} as DATA", "info")
        return str(path)
