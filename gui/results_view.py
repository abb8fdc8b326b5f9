"""The Results tab: the run history as a sortable table, charts, delete and compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.runs import RunRow, run_label, run_rows

from .charts import BarCharts, ScatterChart
from .comparison_panel import ComparisonPanel
from .paths import RememberedFolder
from .results_export import ExportButton, write_chart
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
from .run_notes_dialog import RunNotesDialog, RunNotesEditor
from .runs_table_model import NS_NOTE, RunIdRole, RunsTableModel, SortRole, marks_any

ALL_SOURCES = "All models"
ANY_DATA = "All data"
ANY_MACHINE = "All machines"
ANY_TAG = "All tags"


FILTER_CHARS = 9
"""How many characters a filter box shows; its list shows whole entries."""


def narrow(combo: QComboBox) -> None:
    """A filter box as wide as :data:`FILTER_CHARS` (not its longest entry, which would widen
    the window), the current entry whole in its tooltip and its list as wide as the entries."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(FILTER_CHARS)
    about = combo.toolTip()

    def fit(_index: int = 0) -> None:
        combo.setToolTip("\n".join(t for t in (combo.currentText(), about) if t))
        metrics = combo.view().fontMetrics()
        texts = [combo.itemText(i) for i in range(combo.count())]
        widest = max((metrics.horizontalAdvance(text) for text in texts), default=0)
        combo.view().setMinimumWidth(widest + 32)

    combo.currentIndexChanged.connect(fit)
    model = combo.model()
    model.rowsInserted.connect(lambda *_: fit())
    model.modelReset.connect(fit)


class ResultsView(QWidget):
    """Runs of the history store, filtered (model, kind, data subset, machine, tag, text),
    charts, delete/compare, the runs' own names, tags and notes, and CSV/PNG/SVG export."""

    compareRequested = Signal(int, int)
    """(reference run id, other run id): show their utterances side by side."""
    notesChanged = Signal(int)
    """A run's name, tags or note were stored (its labels elsewhere are out of date)."""
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
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.notes = RunNotesEditor(history, self)
        self.notes.saved.connect(self._notes_saved)
        self.notes.message.connect(self.message)
        self.notes.failed.connect(self.failed)

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
        self.tag = QComboBox()
        self.tag.setToolTip("Only runs carrying this tag (right-click a run to tag it)")
        self.tag.currentIndexChanged.connect(lambda _i: self._filters_changed())
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search plan, name, tags, note, model…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(100)
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
        self.export_button = ExportButton(self.export_csv, self.export_chart, folder)
        bar = QHBoxLayout()
        for label, widget in (
            ("Model:", self.source),
            ("Kind:", self.kind),
            ("Data:", self.subset),
            ("Machine:", self.machine),
            ("Tag:", self.tag),
        ):
            bar.addWidget(QLabel(label))
            bar.addWidget(widget)
            narrow(widget)
        bar.addWidget(self.search, 1)
        self.count = QLabel("")
        self.count.setObjectName("resultsCount")
        self.count.setWordWrap(True)
        actions = QHBoxLayout()  # under the table: what acts on the selected rows
        actions.addWidget(self.count, 1)
        for button in (self.refresh_button, self.compare_button, self.delete_button):
            actions.addWidget(button)
        actions.addWidget(self.export_button)

        self.comparison_box = ComparisonPanel()
        self.comparison = self.comparison_box.table

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
        top_layout.addLayout(actions)
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
        self.comparison_box.clear()
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
        tags = sorted({tag for r in of_kind for tag in r.run.tags}, key=str.lower)
        for combo, anyone, values in (
            (self.subset, ANY_DATA, subsets),
            (self.machine, ANY_MACHINE, machines),
            (self.tag, ANY_TAG, tags),
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
        self.tag.setEnabled(bool(tags))

    def _filters_changed(self) -> None:
        self.filter = RunFilter(
            kind=str(self.kind.currentData() or BENCHMARKS),
            subset=str(self.subset.currentData() or ""),
            machine=str(self.machine.currentData() or ""),
            tag=str(self.tag.currentData() or ""),
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
        marked = any(marks_any(row, self.facts.get(row.run.id)) for row in rows)
        self.count.setText(
            f"{len(rows)} run{'s' if len(rows) != 1 else ''} shown"
            + (f", {hidden} hidden by the filters" if hidden else "")
            + (f" · {NS_NOTE}" if marked else "")
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
        problem = write_chart(self.charts()[which], path)
        if problem:
            self.failed.emit(problem)
            return False
        self.message.emit(f"saved the chart to {path}")
        return True

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
        labels = [run_label(r) for r in self.model.rows if r.run.id in ids]
        for run_id in ids:
            self.facts.forget(run_id)
            try:
                self.history.delete_run(run_id)
            except SpeechquantError as exc:
                self.failed.emit(str(exc))
        self.message.emit(f"deleted run(s) {', '.join(labels)}")
        self.refresh()

    def compare_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 2:
            return
        self.compare(min(ids), max(ids))

    def compare(self, first: int, second: int) -> None:
        """Figures of two runs, the first as reference; their transcripts in the utterance view."""
        if self._show_comparison(first, second):
            self.compareRequested.emit(first, second)

    def _show_comparison(self, first: int, second: int) -> bool:
        try:
            results = [self.history.get_run(first), self.history.get_run(second)]
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return False
        self.comparison_box.show_results(first, second, results)
        return True

    # --- the runs' own names, tags and notes ------------------------------------------------
    def row_menu(self, ids: list[int]) -> QMenu:
        """The right-click menu for the selected runs."""
        menu = QMenu(self)
        edit = menu.addAction("Edit name, tags and note…", lambda: self.edit_notes(ids[0]))
        edit.setEnabled(len(ids) == 1)
        compare = menu.addAction("Compare", self.compare_selected)
        compare.setEnabled(len(ids) == 2)
        menu.addAction("Delete", self.delete_selected)
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if index.isValid() and index.data(RunIdRole) not in self.selected_ids():
            self.select_ids([int(index.data(RunIdRole))])
        ids = self.selected_ids()
        if ids:
            self.row_menu(ids).popup(self.table.viewport().mapToGlobal(pos))

    def edit_notes(self, run_id: int) -> RunNotesDialog | None:
        """Open the name/tags/note dialog of one run (stored when OK is pressed)."""
        row = next((r for r in self.model.rows if r.run.id == run_id), None)
        return self.notes.edit(run_id, row.label if row is not None else f"#{run_id}")

    def _notes_saved(self, run_id: int) -> None:
        """The table and charts reloaded, the comparison refilled if it shows the run."""
        self.refresh()
        self.select_ids([run_id])
        shown = self.comparison_box.run_ids
        if shown is not None and run_id in shown:
            self._show_comparison(*shown)
        self.notesChanged.emit(run_id)

    def _open_utterances(self, index: QModelIndex) -> None:
        run_id = index.data(RunIdRole)
        row = next((r for r in self.model.rows if r.run.id == run_id), None)
        if row is None:
            return
        if row.baseline is not None:
            self.compareRequested.emit(row.baseline.id, row.run.id)
        else:
            self.compareRequested.emit(row.run.id, row.run.id)
