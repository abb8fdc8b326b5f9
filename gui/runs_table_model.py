"""The Results tab's table: one row per stored run, with its paired baseline's figures and the
intervals and machine its stored result carries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from speechquant.core.evaluation.runs import RunRow, run_label
from speechquant.core.evaluation.tables import NOT_SIGNIFICANT, significance
from speechquant.core.formatting import format_bytes

from .results_filter import StoredFacts, data_label, rows_csv

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


def _f(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


def _ci(facts: StoredFacts) -> str:
    return "-" if facts.wer_ci is None else f"{facts.wer_ci[0]:.1f}–{facts.wer_ci[1]:.1f}"


def _cmp(facts: StoredFacts, key: str, spec: str, suffix: str = "") -> str:
    """A comparison interval ``[lo, hi]`` from the stored result, or ``-``."""
    ci = facts.comparison.get(key)
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
        return f"{format(ci[0], spec)}–{format(ci[1], spec)}{suffix}"
    return "-"


def _marked(text: str, significant: bool | None) -> str:
    """``text`` with ``n.s.`` where core's verdict says its interval includes no change."""
    return f"{text} {NOT_SIGNIFICANT}" if text != "-" and significant is False else text


def delta_text(row: RunRow, facts: StoredFacts) -> str:
    return _marked(_f(row.delta_wer, "+.2f"), significance(facts.comparison).wer)


def speedup_text(row: RunRow, facts: StoredFacts) -> str:
    return _marked(_f(row.speedup, ".2f", "×"), significance(facts.comparison).speed)


def marks_any(row: RunRow, facts: StoredFacts) -> bool:
    """Whether the row's ΔWER or speed-up carries the ``n.s.`` mark."""
    return NOT_SIGNIFICANT in delta_text(row, facts) + speedup_text(row, facts)


NS_NOTE = f"{NOT_SIGNIFICANT}: not significant, the 95 % interval includes no change"
HEADER_TIPS = {
    "WER 95 % CI": "95 % bootstrap interval of the WER",
    "ΔWER": f"WER points against the float baseline; {NS_NOTE} (0)",
    "ΔWER CI": "95 % interval of ΔWER (paired by utterance)",
    "speed-up": f"Float RTF / this RTF, timed together with the float model; {NS_NOTE} (1×)",
    "speed-up CI": "95 % interval of the speed-up",
}


def model_text(row: RunRow, facts: StoredFacts) -> str:
    """The run's source, with the language it transcribed where it had one: ``… · de``."""
    return row.run.source + (f" · {facts.language}" if facts.language else "")


Cell = Callable[[RunRow, StoredFacts], Any]
COLUMNS: list[tuple[str, Cell, Cell]] = [
    # header, display(row, facts) -> str, sort(row, facts) -> value
    ("id", lambda r, f: str(r.run.id), lambda r, f: r.run.id),
    ("time", lambda r, f: local_time(r.run.started_at), lambda r, f: r.run.started_at),
    ("plan", lambda r, f: r.run.plan_name or "float32", lambda r, f: r.run.plan_name or ""),
    ("name", lambda r, f: r.run.name or "", lambda r, f: r.run.name or ""),
    ("tags", lambda r, f: ", ".join(r.run.tags), lambda r, f: ", ".join(r.run.tags)),
    ("schemes", lambda r, f: r.run.plan_summary, lambda r, f: r.run.plan_summary),
    ("WER %", lambda r, f: _f(r.run.wer, ".2f"), lambda r, f: r.run.wer),
    ("WER 95 % CI", lambda r, f: _ci(f), lambda r, f: f.wer_ci[0] if f.wer_ci else None),
    ("ΔWER", delta_text, lambda r, f: r.delta_wer),
    ("ΔWER CI", lambda r, f: _cmp(f, "delta_wer_ci", "+.1f"), lambda r, f: r.delta_wer),
    ("RTF", lambda r, f: _f(r.run.rtf, ".3f"), lambda r, f: r.run.rtf),
    ("enc RTF", lambda r, f: _f(r.run.rtf_encoder, ".3f"), lambda r, f: r.run.rtf_encoder),
    ("speed-up", speedup_text, lambda r, f: r.speedup),
    ("speed-up CI", lambda r, f: _cmp(f, "speedup_ci", ".2f", "×"), lambda r, f: r.speedup),
    ("size", lambda r, f: format_bytes(r.run.model_bytes), lambda r, f: r.run.model_bytes),
    ("size ×", lambda r, f: _f(r.size_ratio, ".2f", "×"), lambda r, f: r.size_ratio),
    ("utts", lambda r, f: _f(r.run.n_utterances, "d"), lambda r, f: r.run.n_utterances),
    ("threads", lambda r, f: _f(r.run.threads, "d"), lambda r, f: r.run.threads),
    ("data", lambda r, f: data_label(r.run.data), lambda r, f: r.run.data or ""),
    ("machine", lambda r, f: f.machine_label or "-", lambda r, f: f.machine_label or ""),
    ("engine", lambda r, f: r.run.engine or "-", lambda r, f: r.run.engine or ""),
    ("kind", lambda r, f: r.run.kind, lambda r, f: r.run.kind),
    ("model", lambda r, f: model_text(r, f), lambda r, f: model_text(r, f)),
]
HEADERS = [c[0] for c in COLUMNS]
NUMERIC = {i for i, h in enumerate(HEADERS) if h in (
    "id", "WER %", "ΔWER", "RTF", "enc RTF", "speed-up", "size", "size ×", "utts", "threads",
)}  # fmt: skip


class RunsTableModel(QAbstractTableModel):
    def __init__(self, facts: Callable[[int], StoredFacts], parent: Any = None) -> None:
        super().__init__(parent)
        self.facts = facts
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
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(COLUMNS[section][0])
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row = self.rows[index.row()]
        facts = self.facts(row.run.id)
        _, display, sort = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return display(row, facts)
        if role == SortRole:
            value = sort(row, facts)
            return float("-inf") if value is None and index.column() in NUMERIC else value
        if role == RunIdRole:
            return row.run.id
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, facts)
        return None

    @staticmethod
    def _tooltip(row: RunRow, facts: StoredFacts) -> str:
        run = row.run
        if row.baseline is not None:
            base = f"against float {run_label(row.baseline)}"
        else:
            base = "measured as is (an export)" if run.plan_name else "float baseline"
        lines = [
            run.source + (f" (language {facts.language})" if facts.language else ""),
            run.plan_summary,
            f"data: {run.data or '-'} ({run.n_utterances} utterances)",
            base,
        ]
        if facts.machine_label:
            lines.append(f"machine: {facts.machine_label}")
        if run.name or run.tags:
            lines.append(f"name: {run.name or '-'} · tags: {', '.join(run.tags) or '-'}")
        if run.note:
            lines.append(f"note: {run.note}")
        return "\n".join(lines)

    def csv_text(self, order: list[int] | None = None) -> str:
        """The rows (in ``order`` of row numbers, e.g. the view's sorting) as CSV."""
        chosen = [self.rows[i] for i in order] if order is not None else self.rows
        cells = [
            [display(row, self.facts(row.run.id)) for _, display, _ in COLUMNS] for row in chosen
        ]
        return rows_csv(HEADERS, cells)
