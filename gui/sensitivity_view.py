"""The Sensitivity tab: per-unit ΔWER / speed-up table and chart, tree colours, plans tried.

Fed by :class:`~.search_action.Analyzer` with a core
:class:`~speechquant.core.search.sensitivity.SensitivityResult` (and a
:class:`~speechquant.core.search.plan_search.SearchResult` after "Suggest plan"); no jobs run here.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.evaluation.measure import Measurement
from speechquant.core.search.plan_search import SearchResult
from speechquant.core.search.sensitivity import SensitivityResult, SensitivityRow

from .charts import BASE_COLOR, FRONT_COLOR, PLAN_COLOR, _plot
from .tree_model import SCHEME_COLORS

COLUMNS = ("unit", "scheme", "ΔWER", "speed-up", "enc ×", "saved MB", "LOO ΔWER", "worst")
COLOR_BY = {"ΔWER": "delta", "speed-up": "speedup"}
GOOD, MID, BAD = QColor("#cdebc6"), QColor("#fbefb0"), QColor("#f4b9b2")
SLOW, FAST = QColor("#f1f1f1"), QColor("#a9cdf2")
FOUND_COLOR = QColor("#6a1b9a")


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    t = min(max(t, 0.0), 1.0)
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


def delta_color(delta: float, worst: float) -> QColor:
    """Green at ΔWER ≤ 0, yellow halfway, red at ``worst`` (and beyond)."""
    if delta <= 0 or worst <= 0:
        return GOOD
    t = delta / worst
    return _mix(GOOD, MID, t * 2) if t < 0.5 else _mix(MID, BAD, (t - 0.5) * 2)


def speedup_color(speedup: float | None, best: float) -> QColor:
    """Grey at ≤ 1× (no gain), blue at ``best``."""
    if speedup is None or speedup <= 1 or best <= 1:
        return SLOW
    return _mix(SLOW, FAST, (speedup - 1) / (best - 1))


def _x(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}×"


def row_text(row: SensitivityRow) -> str:
    m = row.single
    loo = "" if row.loo is None else f", all-but-this ΔWER {row.loo.delta_wer:+.2f}"
    return (
        f"{row.scheme}: ΔWER {m.delta_wer:+.2f}, speed-up {_x(m.speedup)}, "
        f"encoder {_x(m.encoder_speedup)}, saves {m.bytes_saved / 1e6:.2f} MB{loo}"
    )


class _Item(QTableWidgetItem):
    """A cell that sorts by a number (``sort``) rather than by its text."""

    def __init__(self, text: str, sort: Any = None) -> None:
        super().__init__(text)
        self.sort = text if sort is None else sort
        self.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        if sort is not None:
            self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        theirs = getattr(other, "sort", other.text())
        try:
            return self.sort < theirs
        except TypeError:
            return str(self.sort) < str(theirs)


class SensitivityView(QWidget):
    """Controls, the ranked table, ΔWER-vs-speed-up and plans-tried charts, the tree colours.

    ``coloursChanged(dict)`` carries ``{module path: (QColor, tooltip line)}`` for the tree.
    """

    coloursChanged = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: SensitivityResult | None = None
        self.search: SearchResult | None = None
        self.run_button = QPushButton("Run sensitivity")
        self.suggest_button = QPushButton("Suggest plan…")
        self.color_by = QComboBox()
        self.color_by.addItems(list(COLOR_BY))
        self.color_by.setToolTip("What the module tree's background colours show")
        self.scheme = QComboBox()
        self.scheme.setToolTip("The scheme whose figures colour the tree")
        self.scheme.setMinimumContentsLength(8)
        self.legend = QLabel("Run sensitivity to measure each unit alone under each scheme.")
        self.legend.setWordWrap(True)
        self.legend.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        tips = {
            "ΔWER": "WER points added by quantizing this unit alone (against float32)",
            "speed-up": "End-to-end RTF of float32 / RTF with this unit quantized",
            "enc ×": "Encoder-only speed-up (when the Benchmark settings time the encoder)",
            "saved MB": "Model bytes saved by quantizing this unit",
            "LOO ΔWER": "Leave-one-out: ΔWER with every unit quantized under this scheme but this "
            "one (lower than the all-units ΔWER: this unit carries damage)",
            "worst": "Utterances that gained the most word errors",
        }
        for i, name in enumerate(COLUMNS):
            item = self.table.horizontalHeaderItem(i)
            if name in tips and item is not None:
                item.setToolTip(tips[name])

        self.units_chart = _plot(
            "Units: ΔWER vs speed-up", "ΔWER  (WER points)", "speed-up  (× faster)"
        )
        self.units_chart.getPlotItem().addLegend(offset=(-10, 10), labelTextColor="#222")
        self.unit_points: dict[str, pg.ScatterPlotItem] = {}
        self.plans_chart = _plot(
            "Plans tried by Suggest plan", "WER %  (search split)", "RTF  (lower is faster)"
        )
        item = self.plans_chart.getPlotItem()
        item.addLegend(offset=(-10, 10), labelTextColor="#222")
        self.front = pg.PlotDataItem(
            pen=pg.mkPen(FRONT_COLOR, width=2, style=Qt.PenStyle.DashLine),
            symbol="o",
            symbolSize=17,
            symbolBrush=None,
            symbolPen=pg.mkPen(FRONT_COLOR, width=2),
            name="Pareto front",
        )
        self.tried = pg.ScatterPlotItem(
            size=10, brush=pg.mkBrush(PLAN_COLOR), pen=pg.mkPen("w"), hoverable=True,
            tip=self._tip, name="plan tried",
        )  # fmt: skip
        self.float_point = pg.ScatterPlotItem(
            size=16, symbol="star", brush=pg.mkBrush(BASE_COLOR), pen=pg.mkPen("#7f0000"),
            hoverable=True, tip=self._tip, name="float32",
        )  # fmt: skip
        self.found = pg.ScatterPlotItem(
            size=16, symbol="d", brush=pg.mkBrush(FOUND_COLOR), pen=pg.mkPen("w"),
            hoverable=True, tip=self._tip, name="plan found",
        )  # fmt: skip
        for part in (self.front, self.tried, self.float_point, self.found):
            item.addItem(part)

        controls = QHBoxLayout()
        controls.addWidget(self.run_button)
        controls.addWidget(self.suggest_button)
        controls.addSpacing(16)
        controls.addWidget(QLabel("Colour tree by"))
        controls.addWidget(self.color_by)
        controls.addWidget(QLabel("under"))
        controls.addWidget(self.scheme)
        controls.addStretch(1)
        charts = QSplitter(Qt.Orientation.Vertical)
        charts.addWidget(self.units_chart)
        charts.addWidget(self.plans_chart)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(charts)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([800, 520])
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.legend)
        layout.addWidget(split, 1)
        layout.addWidget(self.summary)
        self.color_by.currentTextChanged.connect(self._recolour)
        self.scheme.currentTextChanged.connect(self._recolour)

    @staticmethod
    def _tip(x: float, y: float, data: object) -> str:
        return str(data)

    # --- filling ---------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget results (another model was opened)."""
        self.result = None
        self.search = None
        self.table.setRowCount(0)
        self.scheme.clear()
        for points in self.unit_points.values():
            self.units_chart.getPlotItem().removeItem(points)
        self.unit_points = {}
        for part in (self.tried, self.float_point, self.found):
            part.setData([])
        self.front.setData([], [])
        self.legend.setText("Run sensitivity to measure each unit alone under each scheme.")
        self.summary.setText("")
        self.coloursChanged.emit({})

    def set_result(self, result: SensitivityResult) -> None:
        self.result = result
        rows = sorted(result.rows, key=lambda r: (r.single.delta_wer, -(r.single.speedup or 0)))
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            m = row.single
            loo = row.loo.delta_wer if row.loo is not None else None
            worst = ", ".join(f"{c.id} +{c.delta}" for c in m.worst(2)) or "-"
            cells = [
                _Item(row.unit.name),
                _Item(row.scheme),
                _Item(f"{m.delta_wer:+.2f}", m.delta_wer),
                _Item(_x(m.speedup), m.speedup or 0.0),
                _Item(_x(m.encoder_speedup), m.encoder_speedup or 0.0),
                _Item(f"{m.bytes_saved / 1e6:.2f}", m.bytes_saved),
                _Item("-" if loo is None else f"{loo:+.2f}", -1e9 if loo is None else loo),
                _Item(worst),
            ]
            cells[0].setToolTip("\n".join(row.unit.paths))
            cells[1].setForeground(QColor(SCHEME_COLORS.get(row.scheme, "#222")))
            for column, cell in enumerate(cells):
                self.table.setItem(i, column, cell)
        self.table.setSortingEnabled(True)
        self.table.sortItems(2, Qt.SortOrder.AscendingOrder)
        self._fill_units_chart(result)
        current = self.scheme.currentText()
        self.scheme.blockSignals(True)
        self.scheme.clear()
        self.scheme.addItems(result.schemes)
        if current in result.schemes:
            self.scheme.setCurrentText(current)
        self.scheme.blockSignals(False)
        base = result.baseline
        self.summary.setText(
            f"{result.source} on {len(result.ids)} utterances of {result.data}: float32 WER "
            f"{base.wer:.2f} %, RTF {base.rtf:.4f}; {result.computed} measured, "
            f"{result.reused} reused from the history"
            + (
                f"; static units calibrated on {', '.join(result.calibration_ids)}"
                if result.calibration_ids
                else ""
            )
        )
        self._recolour()

    def _fill_units_chart(self, result: SensitivityResult) -> None:
        item = self.units_chart.getPlotItem()
        for points in self.unit_points.values():
            item.removeItem(points)
        self.unit_points = {}
        xs: list[float] = []
        ys: list[float] = []
        for scheme in result.schemes:
            spots = []
            for row in result.rows:
                if row.scheme != scheme:
                    continue
                x, y = row.single.speedup or 0.0, row.single.delta_wer
                spots.append({"pos": (x, y), "data": f"{row.unit.name}\n{row_text(row)}"})
                xs.append(x)
                ys.append(y)
            color = QColor(SCHEME_COLORS.get(scheme, "#555"))
            points = pg.ScatterPlotItem(
                size=10, brush=pg.mkBrush(color), pen=pg.mkPen("w"), hoverable=True,
                hoverSize=14, tip=self._tip, name=scheme,
            )  # fmt: skip
            points.setData(spots)
            item.addItem(points)
            self.unit_points[scheme] = points
        if xs:
            x_span = (max(xs) - min(xs)) or 0.2
            y_span = (max(ys) - min(ys)) or 1.0
            item.setXRange(min(xs) - 0.1 * x_span, max(xs) + 0.3 * x_span, padding=0)
            item.setYRange(min(ys) - 0.15 * y_span, max(ys) + 0.3 * y_span, padding=0)

    def set_search(self, search: SearchResult) -> None:
        """Every plan tried as a point (the float model as a star), the Pareto front, the winner."""
        self.search = search
        self.set_result(search.sensitivity)
        self.summary.setText(
            f"{self.summary.text()} (sensitivity on the search split of Suggest plan; "
            f"{len(search.steps)} plans tried, plan found {search.plan.name})"
        )
        evaluated = search.evaluated()
        spots = []
        for i, step in enumerate(search.steps):
            m = step.measurement
            mark = "kept" if step.accepted else ("over budget" if not step.within_budget else "")
            spots.append(
                {
                    "pos": (m.rtf, m.wer),
                    "data": f"#{i + 1} {step.move} ({step.engine}) {mark}\n"
                    f"WER {m.wer:.2f} % (ΔWER {m.delta_wer:+.2f}), RTF {m.rtf:.4f}, "
                    f"{m.model_bytes / 1e6:.2f} MB",
                }
            )
        self.float_point.setData(spots[:1])
        self.tried.setData(spots[1:])
        chosen = [
            s
            for s, step in zip(spots, search.steps, strict=True)
            if step.measurement is search.search
        ]
        self.found.setData(chosen[-1:])
        front = search.pareto()
        self.front.setData([evaluated[i].rtf for i in front], [evaluated[i].wer for i in front])
        item = self.plans_chart.getPlotItem()
        xs = [m.rtf for m in evaluated]
        ys = [m.wer for m in evaluated]
        x_span = (max(xs) - min(xs)) or max(xs) * 0.5 or 0.01
        y_span = (max(ys) - min(ys)) or 1.0
        item.setXRange(min(xs) - 0.1 * x_span, max(xs) + 0.3 * x_span, padding=0)
        item.setYRange(min(ys) - 0.15 * y_span, max(ys) + 0.3 * y_span, padding=0)

    # --- tree colours ----------------------------------------------------------------------
    def colours(self) -> dict[str, tuple[QColor, str]]:
        """``{module path: (background, tooltip)}`` for the units, by the chosen figure/scheme."""
        result = self.result
        if result is None:
            return {}
        scheme = self.scheme.currentText()
        mode = COLOR_BY[self.color_by.currentText()]
        shown = [r for r in result.rows if r.scheme == scheme]
        worst = max([r.single.delta_wer for r in shown] + [0.0])
        best = max([r.single.speedup or 0.0 for r in shown] + [1.0])
        found: dict[str, tuple[QColor, str]] = {}
        for unit in result.units:
            rows = [r for r in result.rows if r.unit.name == unit.name]
            row = next((r for r in rows if r.scheme == scheme), None)
            if row is None:
                continue
            if mode == "delta":
                color = delta_color(row.single.delta_wer, worst)
            else:
                color = speedup_color(row.single.speedup, best)
            text = f"sensitivity of unit {unit.name}:\n" + "\n".join(
                f"  {row_text(r)}" for r in rows
            )
            for path in unit.paths:
                found[path] = (color, text)
        if mode == "delta":
            scale = (
                f"green ≤ 0, yellow {worst / 2:+.2f}, red {worst:+.2f} WER points"
                if worst > 0
                else "all green: no unit raised the WER"
            )
            self.legend.setText(
                f"Tree colours: ΔWER of each unit quantized alone under {scheme} — {scale}. "
                "Hover a module in the Plan tab for its figures."
            )
        else:
            self.legend.setText(
                f"Tree colours: end-to-end speed-up of each unit quantized alone under {scheme} — "
                f"grey ≤ 1.00×, blue {best:.2f}×. Hover a module in the Plan tab for its figures."
            )
        return found

    def _recolour(self, *_: Any) -> None:
        if self.result is not None and self.scheme.currentText():
            self.coloursChanged.emit(self.colours())


def measurement_line(m: Measurement) -> str:
    return f"{m.label}: ΔWER {m.delta_wer:+.2f}, speed-up {_x(m.speedup)}" + (
        " (reused)" if m.cached else ""
    )


__all__ = ["SensitivityView", "delta_color", "speedup_color", "measurement_line"]
