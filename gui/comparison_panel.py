"""The Results tab's comparison: two runs' figures side by side, the first as reference, each
headed by its label (the user's name when it has one) with its tags and note."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.evaluation.experiment import comparison_rows
from speechquant.core.evaluation.run_notes import note_preview
from speechquant.core.evaluation.runs import run_label
from speechquant.core.formatting import format_bytes

HEADERS = ["run", "WER %", "ΔWER", "RTF", "speed-up", "size", "size ×", "tags", "note"]
NOTE = HEADERS.index("note")
TEXT_COLUMNS = {0, HEADERS.index("tags"), NOTE}
NOTE_WIDTH = 48


def speedup_cell(speedup: float) -> str:
    """A paired speed-up, or why there is none (runs timed apart are never divided)."""
    return "n/a: not timed together" if math.isnan(speedup) else f"{speedup:.2f}×"


class ComparisonPanel(QGroupBox):
    """A table of two stored runs (``history.get_run`` objects), hidden until filled."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Comparison", parent)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for column in (0, NOTE):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        QVBoxLayout(self).addWidget(self.table)
        self.run_ids: tuple[int, int] | None = None
        """The (reference, other) runs shown; None when hidden."""
        self.setVisible(False)

    def clear(self) -> None:
        self.setVisible(False)
        self.table.setRowCount(0)
        self.run_ids = None

    def show_results(self, first: int, second: int, results: list[dict[str, Any]]) -> None:
        """Fill the table with ``results`` (``history.get_run`` objects, reference first)."""
        rows = comparison_rows(results)
        table = self.table
        table.setRowCount(len(rows))
        table.resizeRowsToContents()
        labels = [run_label(result) for result in results]
        for r, (row, result) in enumerate(zip(rows, results, strict=True)):
            meta = result["history"]
            note = meta.get("note") or ""
            cells = [
                labels[r],
                f"{row['wer']:.2f}",
                f"{row['delta_wer']:+.2f}",
                f"{row['rtf']:.3f}",
                speedup_cell(row["speedup"]),
                format_bytes(row["model_bytes"]),
                f"{row['size_ratio']:.2f}×",
                ", ".join(meta.get("tags") or ()) or "-",
                note_preview(note, NOTE_WIDTH) or "-",
            ]
            tips = {0: f"plan: {row['name']}" if meta.get("name") else "", NOTE: note}
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c not in TEXT_COLUMNS:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if tips.get(c):
                    item.setToolTip(tips[c])
                table.setItem(r, c, item)
        self.run_ids = (first, second)
        self.setTitle(f"Comparison: {labels[-1]} against {labels[0]}")
        table.resizeRowsToContents()
        height = table.horizontalHeader().height() + sum(
            table.rowHeight(r) for r in range(len(rows))
        )
        table.setFixedHeight(height + 2 * table.frameWidth() + 2)
        self.setVisible(True)
