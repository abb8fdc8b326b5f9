"""The Results tab's comparison: two runs' figures side by side, the first as reference."""

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
from speechquant.core.formatting import format_bytes

HEADERS = ["run", "WER %", "ΔWER", "RTF", "speed-up", "size", "size ×"]


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
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        QVBoxLayout(self).addWidget(self.table)
        self.setVisible(False)

    def clear(self) -> None:
        self.setVisible(False)
        self.table.setRowCount(0)

    def show_results(self, first: int, second: int, results: list[dict[str, Any]]) -> None:
        """Fill the table with ``results`` (reference first) and show it."""
        rows = comparison_rows(results)
        table = self.table
        table.setRowCount(len(rows))
        table.resizeRowsToContents()
        for r, (row, result) in enumerate(zip(rows, results, strict=True)):
            cells = [
                f"#{result['history']['id']} {row['name']}",
                f"{row['wer']:.2f}",
                f"{row['delta_wer']:+.2f}",
                f"{row['rtf']:.3f}",
                speedup_cell(row["speedup"]),
                format_bytes(row["model_bytes"]),
                f"{row['size_ratio']:.2f}×",
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                table.setItem(r, c, item)
        self.setTitle(f"Comparison: #{second} against #{first}")
        table.resizeRowsToContents()
        height = table.horizontalHeader().height() + sum(
            table.rowHeight(r) for r in range(len(rows))
        )
        table.setFixedHeight(height + 2 * table.frameWidth() + 2)
        self.setVisible(True)
