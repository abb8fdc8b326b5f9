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
from speechquant.core.evaluation.results import Comparison
from speechquant.core.evaluation.run_notes import note_preview
from speechquant.core.evaluation.runs import run_label
from speechquant.core.evaluation.tables import NOT_SIGNIFICANT, significance
from speechquant.core.formatting import format_bytes

HEADERS = ["run", "WER %", "ΔWER", "RTF", "speed-up", "size", "size ×", "tags", "note"]
NOTE = HEADERS.index("note")
DELTA, SPEED = HEADERS.index("ΔWER"), HEADERS.index("speed-up")
TEXT_COLUMNS = {0, HEADERS.index("tags"), NOTE}
NOTE_WIDTH = 48


def speedup_cell(speedup: float) -> str:
    """A paired speed-up, or why there is none (runs timed apart are never divided)."""
    return "n/a: not timed together" if math.isnan(speedup) else f"{speedup:.2f}×"


def _interval(ci: list[float], spec: str, suffix: str = "") -> str:
    return f"95 % interval {format(ci[0], spec)}{suffix} – {format(ci[1], spec)}{suffix}"


def marked_cells(row: dict[str, Any], reference: bool) -> tuple[str, str, str, str]:
    """ΔWER and speed-up cells (``n.s.`` where the 95 % interval includes no change) and
    their tooltips (the intervals)."""
    delta, speed = f"{row['delta_wer']:+.2f}", speedup_cell(row["speedup"])
    comparison: Comparison = row["comparison"]
    if reference:
        return delta, speed, "", ""
    verdicts = significance(comparison)
    delta_tip = speed_tip = ""
    if verdicts.wer is not None and comparison.delta_wer_ci:
        delta_tip = _interval(comparison.delta_wer_ci, "+.2f")
        if verdicts.wer is False:
            delta += f" {NOT_SIGNIFICANT}"
            delta_tip += f"; {NOT_SIGNIFICANT}: it includes no change"
    if verdicts.speed is not None and comparison.speedup_ci and not math.isnan(row["speedup"]):
        speed_tip = _interval(comparison.speedup_ci, ".2f", "×")
        if verdicts.speed is False:
            speed += f" {NOT_SIGNIFICANT}"
            speed_tip += f"; {NOT_SIGNIFICANT}: it includes no change"
    return delta, speed, delta_tip, speed_tip


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
            delta, speed, delta_tip, speed_tip = marked_cells(row, reference=r == 0)
            cells = [
                labels[r],
                f"{row['wer']:.2f}",
                delta,
                f"{row['rtf']:.3f}",
                speed,
                format_bytes(row["model_bytes"]),
                f"{row['size_ratio']:.2f}×",
                ", ".join(meta.get("tags") or ()) or "-",
                note_preview(note, NOTE_WIDTH) or "-",
            ]
            tips = {
                0: f"plan: {row['name']}" if meta.get("name") else "",
                DELTA: delta_tip,
                SPEED: speed_tip,
                NOTE: note,
            }
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
