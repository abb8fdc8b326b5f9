"""The Results tab's Export menu: the table as CSV, each chart as PNG or SVG."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers pg.exporters)
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QMenu, QToolButton, QWidget

from .paths import RememberedFolder

CHART_NAMES = ("wer-vs-rtf", "speedup", "size")


def write_chart(widget: pg.PlotWidget, path: str | Path) -> str | None:
    """Write ``widget`` to ``path`` (PNG or SVG by suffix); None, or why it was not written."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".svg"):
        return f"cannot export a chart as {target.name}; use a .png or .svg name"
    try:
        if suffix == ".svg":
            generator = QSvgGenerator()
            generator.setFileName(str(target))
            generator.setSize(widget.size())
            generator.setViewBox(widget.rect())
            generator.setTitle("speechquant chart")
            painter = QPainter(generator)
            widget.render(painter)
            painter.end()
        else:
            pg.exporters.ImageExporter(widget.getPlotItem()).export(str(target))
    except OSError as exc:
        return f"cannot write {target}: {exc.strerror or exc}"
    if not target.is_file():
        return f"cannot write {target}; choose a writable folder"
    return None


class ExportButton(QToolButton):
    """Export ▸ a save dialog for the table or a chart, then ``save_csv(path)`` or
    ``save_chart(which, path)`` (0 scatter, 1 speed-up, 2 size)."""

    def __init__(
        self,
        save_csv: Callable[[str], bool],
        save_chart: Callable[[int, str], bool],
        folder: RememberedFolder | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.save_csv, self.save_chart, self.folder = save_csv, save_chart, folder
        self.setText("Export")
        menu = QMenu(self)
        menu.addAction("Table as CSV…", self._csv_dialog)
        menu.addAction("WER vs RTF chart (PNG/SVG)…", lambda: self._chart_dialog(0))
        menu.addAction("Speed-up chart (PNG/SVG)…", lambda: self._chart_dialog(1))
        menu.addAction("Size chart (PNG/SVG)…", lambda: self._chart_dialog(2))
        self.setMenu(menu)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

    def _start(self, name: str) -> str:
        return str(Path(self.folder.get() if self.folder is not None else "") / name)

    def _chosen(self, path: str) -> bool:
        if path and self.folder is not None:
            self.folder.remember(path)
        return bool(path)

    def _csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export table", self._start("runs.csv"), "CSV (*.csv)"
        )
        if self._chosen(path):
            self.save_csv(path)

    def _chart_dialog(self, which: int) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export chart",
            self._start(f"{CHART_NAMES[which]}.png"),
            "PNG image (*.png);;SVG drawing (*.svg)",
        )
        if self._chosen(path):
            self.save_chart(which, path)
