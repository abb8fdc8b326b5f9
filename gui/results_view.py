"""The Results tab: the run history as a sortable table, charts, delete and compare."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers pg.exporters)
from PySide6.QtCore import (
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.experiment import comparison_rows
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.runs import RunRow, run_rows
from speechquant.core.formatting import format_bytes

from .charts import BarCharts, ScatterChart
from .paths import RememberedFolder
from .results_filter import (
    ALL,
    BENCHMARKS,
    KIND_CHOICES,
    KIND_LABELS,
    FactsCache,
    RunFilter,
    filter_rows,
    subset_label,
)
from .runs_table_model import RunIdRole, RunsTableModel, SortRole

ALL_SOURCES = "All models"
ANY_DATA = "All data"
ANY_MACHINE = "All machines"


def speedup_cell(speedup: float) -> str:
    """A paired speed-up, or why there is none (runs timed apart are never divided)."""
    return "n/a: not timed together" if math.isnan(speedup) else f"{speedup:.2f}×"


class ResultsView(QWidget):
    """Runs of the history store, filtered (model, kind, data subset, machine, text), charts,
    delete/compare, and CSV/PNG/SVG export."""

    compareRequested = Signal(int, int)
    """(reference run id, other run id): show their utterances side by side."""
    message = Signal(str)
    failed = Signal(str)

    def __init__(
        self,
        history: HistoryStore,
        folder: RememberedFolder | None = None,
        confirm: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.history = history
        self.folder = folder
        self.confirm = confirm
        self.facts = FactsCache(history)
        self.filter = RunFilter()
        self.model = RunsTableModel(self.facts.get, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SortRole)
        self.table = QTableView()
        self.table.setObjectName("resultsTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setAlternatingRowColors(True)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(self._open_utterances)

        self.source = QComboBox()
        self.source.setMinimumContentsLength(14)
        self.source.currentTextChanged.connect(lambda _t: self.refresh())
        self.kind = QComboBox()
        for key in KIND_CHOICES:
            self.kind.addItem(KIND_LABELS.get(key, key), key)
        self.kind.setToolTip("Sensitivity and search measurements are hidden by default")
        self.kind.currentIndexChanged.connect(lambda _i: self._filters_changed())
        self.subset = QComboBox()
        self.subset.setMinimumContentsLength(12)
        self.subset.setToolTip("Dataset and how many of its utterances a run evaluated")
        self.subset.currentIndexChanged.connect(lambda _i: self._filters_changed())
        self.machine = QComboBox()
        self.machine.setToolTip("The machine that measured the runs")
        self.machine.currentIndexChanged.connect(lambda _i: self._filters_changed())
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search plan, schemes, model…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(170)
        self.search.textChanged.connect(lambda _t: self._filters_changed())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.compare_button = QPushButton("Compare 2 selected")
        self.compare_button.setToolTip(
            "Select two runs: their figures side by side and their transcripts"
        )
        self.compare_button.clicked.connect(self.compare_selected)
        self.delete_button = QPushButton("Delete selected")
        self.delete_button.clicked.connect(self.delete_selected)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        export_menu = QMenu(self.export_button)
        export_menu.addAction("Table as CSV…", self._export_csv_dialog)
        export_menu.addAction("WER vs RTF chart (PNG/SVG)…", lambda: self._export_chart_dialog(0))
        export_menu.addAction("Speed-up chart (PNG/SVG)…", lambda: self._export_chart_dialog(1))
        export_menu.addAction("Size chart (PNG/SVG)…", lambda: self._export_chart_dialog(2))
        self.export_button.setMenu(export_menu)
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar = QHBoxLayout()
        for label, widget in (
            ("Model:", self.source),
            ("Kind:", self.kind),
            ("Data:", self.subset),
            ("Machine:", self.machine),
        ):
            bar.addWidget(QLabel(label))
            bar.addWidget(widget)
        bar.addWidget(self.search, 1)
        for button in (self.refresh_button, self.compare_button, self.delete_button):
            bar.addWidget(button)
        bar.addWidget(self.export_button)
        self.count = QLabel("")
        self.count.setObjectName("resultsCount")

        self.comparison = QTableWidget(0, 7)
        self.comparison.setHorizontalHeaderLabels(
            ["run", "WER %", "ΔWER", "RTF", "speed-up", "size", "size ×"]
        )
        self.comparison.verticalHeader().setVisible(False)
        self.comparison.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.comparison.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.comparison_box = QGroupBox("Comparison")
        QVBoxLayout(self.comparison_box).addWidget(self.comparison)
        self.comparison_box.setVisible(False)

        self.scatter = ScatterChart()
        self.bars = BarCharts()
        charts = QSplitter(Qt.Orientation.Horizontal)
        charts.addWidget(self.scatter)
        charts.addWidget(self.bars)
        charts.setSizes([500, 700])
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.table)
        top_layout.addWidget(self.count)
        top_layout.addWidget(self.comparison_box)
        split.addWidget(top)
        split.addWidget(charts)
        split.setSizes([300, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._current_source: str | None = None
        self._all_rows: list[RunRow] = []
        self._selection_changed()

    # --- data ------------------------------------------------------------------------------
    def set_current_source(self, source: str | None) -> None:
        """Show the runs of this model (the one open in the window); what was shown for the
        previous model (a comparison, chart ranges) goes."""
        self._current_source = source
        self.comparison_box.setVisible(False)
        self.comparison.setRowCount(0)
        self._fill_sources(prefer=source)
        self.refresh()

    def _fill_sources(self, prefer: str | None = None) -> None:
        try:
            sources = sorted({run.source for run in self.history.list_runs()})
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            sources = []
        if prefer and prefer not in sources:
            sources.append(prefer)
        wanted = prefer or self.source.currentText() or ALL_SOURCES
        self.source.blockSignals(True)
        self.source.clear()
        self.source.addItems([ALL_SOURCES, *sources])
        self.source.setCurrentText(wanted if wanted in sources else ALL_SOURCES)
        self.source.blockSignals(False)

    def refresh(self) -> None:
        """Reload the runs of the chosen model and show those the filters keep."""
        chosen = self.source.currentText()
        source = None if chosen in ("", ALL_SOURCES) else chosen
        try:
            runs = self.history.list_runs(source=source)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            runs = []
        self._all_rows = run_rows(runs, lambda run_id: self.facts.get(run_id).comparison)
        self._apply_filters()

    def _fill_choices(self) -> None:
        """The Data and Machine choices the runs of the chosen kind offer (choice kept)."""
        of_kind = filter_rows(self._all_rows, RunFilter(kind=self.filter.kind), self.facts.get)
        subsets = sorted({subset_label(r.run) for r in of_kind})
        machines = sorted({self.facts.get(r.run.id).machine_label or "-" for r in of_kind})
        for combo, anyone, values in (
            (self.subset, ANY_DATA, subsets),
            (self.machine, ANY_MACHINE, machines),
        ):
            keep = combo.currentData() or ""
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(anyone, "")
            for value in values:
                combo.addItem(value, value)
            combo.setCurrentIndex(max(0, combo.findData(keep)))
            combo.blockSignals(False)
        self.machine.setEnabled(machines != ["-"])

    def _filters_changed(self) -> None:
        self.filter = RunFilter(
            kind=str(self.kind.currentData() or BENCHMARKS),
            subset=str(self.subset.currentData() or ""),
            machine=str(self.machine.currentData() or ""),
            text=self.search.text().strip(),
        )
        self._apply_filters()

    def show_all_kinds(self) -> None:
        self.kind.setCurrentIndex(self.kind.findData(ALL))

    def _apply_filters(self) -> None:
        self._fill_choices()
        rows = filter_rows(self._all_rows, self.filter, self.facts.get)
        self.model.set_rows(rows)
        self.scatter.set_rows(rows, self.facts.get)
        self.bars.set_rows(rows, self.facts.get)
        hidden = len(self._all_rows) - len(rows)
        self.count.setText(
            f"{len(rows)} run{'s' if len(rows) != 1 else ''} shown"
            + (f", {hidden} hidden by the filters" if hidden else "")
        )
        self._selection_changed()

    def add_source(self, source: str) -> None:
        """After a run: make sure the source is listed and shown, then reload."""
        if self.source.findText(source) < 0:
            self._fill_sources(prefer=source)
        self.refresh()

    # --- export ----------------------------------------------------------------------------
    def table_csv(self) -> str:
        """The visible rows in the view's order, as CSV."""
        order = [
            self.proxy.mapToSource(self.proxy.index(r, 0)).row()
            for r in range(self.proxy.rowCount())
        ]
        return self.model.csv_text(order)

    def export_csv(self, path: str | Path) -> bool:
        try:
            Path(path).write_text(self.table_csv(), encoding="utf-8")
        except OSError as exc:
            self.failed.emit(f"cannot write {path}: {exc.strerror or exc}")
            return False
        self.message.emit(f"saved {self.model.rowCount()} runs to {path}")
        return True

    def charts(self) -> list[Any]:
        return [self.scatter.plot, self.bars.speedup.plot, self.bars.shrink.plot]

    def export_chart(self, which: int, path: str | Path) -> bool:
        """Write chart ``which`` (0 scatter, 1 speed-up, 2 size) as PNG or SVG by suffix."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in (".png", ".svg"):
            self.failed.emit(f"cannot export a chart as {target.name}; use a .png or .svg name")
            return False
        widget = self.charts()[which]
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
            self.failed.emit(f"cannot write {target}: {exc.strerror or exc}")
            return False
        if not target.is_file():
            self.failed.emit(f"cannot write {target}; choose a writable folder")
            return False
        self.message.emit(f"saved the chart to {target}")
        return True

    def _start_dir(self) -> str:
        return self.folder.get() if self.folder is not None else ""

    def _export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export table", str(Path(self._start_dir()) / "runs.csv"), "CSV (*.csv)"
        )
        if path:
            if self.folder is not None:
                self.folder.remember(path)
            self.export_csv(path)

    def _export_chart_dialog(self, which: int) -> None:
        name = ("wer-vs-rtf", "speedup", "size")[which]
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export chart",
            str(Path(self._start_dir()) / f"{name}.png"),
            "PNG image (*.png);;SVG drawing (*.svg)",
        )
        if path:
            if self.folder is not None:
                self.folder.remember(path)
            self.export_chart(which, path)

    # --- selection and actions -------------------------------------------------------------
    def selected_ids(self) -> list[int]:
        rows = self.table.selectionModel().selectedRows()
        return [int(index.data(RunIdRole)) for index in sorted(rows, key=lambda i: i.row())]

    def select_ids(self, ids: list[int]) -> None:
        selection = self.table.selectionModel()
        selection.clearSelection()
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(RunIdRole) in ids:
                selection.select(
                    index,
                    selection.SelectionFlag.Select | selection.SelectionFlag.Rows,
                )

    def _selection_changed(self, *_: Any) -> None:
        ids = self.selected_ids()
        self.compare_button.setEnabled(len(ids) == 2)
        self.delete_button.setEnabled(bool(ids))

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        if self.confirm:
            answer = QMessageBox.question(
                self, "Delete runs", f"Delete {len(ids)} run(s) from the history?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        for run_id in ids:
            self.facts.forget(run_id)
            try:
                self.history.delete_run(run_id)
            except SpeechquantError as exc:
                self.failed.emit(str(exc))
        self.message.emit(f"deleted run(s) {', '.join(f'#{i}' for i in ids)}")
        self.refresh()

    def compare_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 2:
            return
        self.compare(min(ids), max(ids))

    def compare(self, first: int, second: int) -> None:
        """Figures of two runs, the first as reference; their transcripts in the utterance view."""
        try:
            results = [self.history.get_run(first), self.history.get_run(second)]
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return
        rows = comparison_rows(results)
        self.comparison.setRowCount(len(rows))
        self.comparison.resizeRowsToContents()
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
                self.comparison.setItem(r, c, item)
        self.comparison_box.setTitle(f"Comparison: #{second} against #{first}")
        self.comparison.resizeRowsToContents()
        height = self.comparison.horizontalHeader().height() + sum(
            self.comparison.rowHeight(r) for r in range(len(rows))
        )
        self.comparison.setFixedHeight(height + 2 * self.comparison.frameWidth() + 2)
        self.comparison_box.setVisible(True)
        self.compareRequested.emit(first, second)

    def _open_utterances(self, index: QModelIndex) -> None:
        run_id = index.data(RunIdRole)
        row = next((r for r in self.model.rows if r.run.id == run_id), None)
        if row is None:
            return
        if row.baseline is not None:
            self.compareRequested.emit(row.baseline.id, row.run.id)
        else:
            self.compareRequested.emit(row.run.id, row.run.id)
