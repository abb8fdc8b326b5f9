"""The Results tab: the run history as a sortable table, charts, delete and compare."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.experiment import comparison_rows
from speechquant.core.evaluation.history import HistoryStore

from .charts import BarCharts, ScatterChart
from .runs import RunRow, run_rows

ALL_SOURCES = "All models"
SortRole = Qt.ItemDataRole.UserRole + 1
RunIdRole = Qt.ItemDataRole.UserRole + 2
Index = QModelIndex | QPersistentModelIndex
NO_PARENT = QModelIndex()


def local_time(text: str) -> str:
    """A stored ISO time as local ``YYYY-MM-DD HH:MM:SS``."""
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text.replace("T", " ")[:19]
    return (stamp.astimezone() if stamp.tzinfo else stamp).strftime("%Y-%m-%d %H:%M:%S")


def data_label(data: str | None) -> str:
    """A DATA spec as shown in the table: a path's last part (``-`` when not recorded)."""
    if not data:
        return "-"
    return data.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or data


def _f(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


COLUMNS: list[tuple[str, Any, Any]] = [
    # header, display(row) -> str, sort(row) -> value
    ("id", lambda r: str(r.run.id), lambda r: r.run.id),
    ("time", lambda r: local_time(r.run.started_at), lambda r: r.run.started_at),
    ("plan", lambda r: r.run.plan_name or "float32", lambda r: r.run.plan_name or ""),
    ("schemes", lambda r: r.run.plan_summary, lambda r: r.run.plan_summary),
    ("WER %", lambda r: _f(r.run.wer, ".2f"), lambda r: r.run.wer),
    ("ΔWER", lambda r: _f(r.delta_wer, "+.2f"), lambda r: r.delta_wer),
    ("RTF", lambda r: _f(r.run.rtf, ".3f"), lambda r: r.run.rtf),
    ("enc RTF", lambda r: _f(r.run.rtf_encoder, ".3f"), lambda r: r.run.rtf_encoder),
    ("speed-up", lambda r: _f(r.speedup, ".2f", "×"), lambda r: r.speedup),
    ("size MB", lambda r: _f((r.run.model_bytes or 0) / 1e6, ".2f"), lambda r: r.run.model_bytes),
    ("size ×", lambda r: _f(r.size_ratio, ".2f", "×"), lambda r: r.size_ratio),
    ("utts", lambda r: _f(r.run.n_utterances, "d"), lambda r: r.run.n_utterances),
    ("threads", lambda r: _f(r.run.threads, "d"), lambda r: r.run.threads),
    ("data", lambda r: data_label(r.run.data), lambda r: r.run.data or ""),
    ("engine", lambda r: r.run.engine or "-", lambda r: r.run.engine or ""),
    ("kind", lambda r: r.run.kind, lambda r: r.run.kind),
    ("model", lambda r: r.run.source, lambda r: r.run.source),
]
NUMERIC = {0, 4, 5, 6, 7, 8, 9, 10, 11, 12}


class RunsTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[RunRow] = []

    def set_rows(self, rows: list[RunRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: Index = NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = NO_PARENT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][0] if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row = self.rows[index.row()]
        _, display, sort = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return display(row)
        if role == SortRole:
            value = sort(row)
            return float("-inf") if value is None and index.column() in NUMERIC else value
        if role == RunIdRole:
            return row.run.id
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row.run.source}\n{row.run.plan_summary}\ndata: {row.run.data or '-'}"
        return None


class ResultsView(QWidget):
    """Runs of the history store (filtered by model), charts, and delete/compare actions."""

    compareRequested = Signal(int, int)
    """(reference run id, other run id): show their utterances side by side."""
    message = Signal(str)
    failed = Signal(str)

    def __init__(
        self, history: HistoryStore, confirm: bool = True, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.history = history
        self.confirm = confirm
        self.model = RunsTableModel(self)
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
        self.source.setMinimumContentsLength(24)
        self.source.currentTextChanged.connect(lambda _t: self.refresh())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.compare_button = QPushButton("Compare 2 selected")
        self.compare_button.setToolTip(
            "Select two runs: their figures side by side and their transcripts"
        )
        self.compare_button.clicked.connect(self.compare_selected)
        self.delete_button = QPushButton("Delete selected")
        self.delete_button.clicked.connect(self.delete_selected)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Model:"))
        bar.addWidget(self.source)
        bar.addStretch(1)
        for button in (self.refresh_button, self.compare_button, self.delete_button):
            bar.addWidget(button)

        self.comparison = QTableWidget(0, 7)
        self.comparison.setHorizontalHeaderLabels(
            ["run", "WER %", "ΔWER", "RTF", "speed-up", "size MB", "size ×"]
        )
        self.comparison.verticalHeader().setVisible(False)
        self.comparison.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.comparison_box = QGroupBox("Comparison")
        QVBoxLayout(self.comparison_box).addWidget(self.comparison)
        self.comparison_box.setVisible(False)
        self.comparison_box.setMaximumHeight(130)

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
        top_layout.addWidget(self.comparison_box)
        split.addWidget(top)
        split.addWidget(charts)
        split.setSizes([260, 420])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._current_source: str | None = None
        self._selection_changed()

    # --- data ------------------------------------------------------------------------------
    def set_current_source(self, source: str | None) -> None:
        """Show the runs of this model (the one open in the window) by default."""
        self._current_source = source
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
        chosen = self.source.currentText()
        source = None if chosen in ("", ALL_SOURCES) else chosen
        try:
            runs = self.history.list_runs(source=source)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            runs = []
        rows = run_rows(runs)
        self.model.set_rows(rows)
        self.scatter.set_rows(rows)
        self.bars.set_rows(rows)
        self._selection_changed()

    def add_source(self, source: str) -> None:
        """After a run: make sure the source is listed and shown, then reload."""
        if self.source.findText(source) < 0:
            self._fill_sources(prefer=source)
        self.refresh()

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
        for r, (row, result) in enumerate(zip(rows, results, strict=True)):
            cells = [
                f"#{result['history']['id']} {row['name']}",
                f"{row['wer']:.2f}",
                f"{row['delta_wer']:+.2f}",
                f"{row['rtf']:.3f}",
                f"{row['speedup']:.2f}×",
                f"{row['model_bytes'] / 1e6:.2f}",
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
