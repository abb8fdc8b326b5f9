"""pyqtgraph charts of the run history: WER vs RTF with the Pareto front, speed-up and size bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from speechquant.core.evaluation.pareto import pareto_front

from .runs import RunRow, is_baseline, plan_tooltip

PLAN_COLOR = QColor("#1f5fae")
BASE_COLOR = QColor("#c62828")
FRONT_COLOR = QColor("#ef8f00")
SIZE_COLOR = QColor("#2e7d32")
MAX_LABELS = 14
MAX_BARS = 12


def _plot(title: str, left: str, bottom: str) -> pg.PlotWidget:
    widget = pg.PlotWidget(background="w")
    item = widget.getPlotItem()
    item.setTitle(title, color="#222", size="11pt")
    item.setLabel("left", left, color="#222")
    item.setLabel("bottom", bottom, color="#222")
    item.showGrid(x=True, y=True, alpha=0.25)
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen("#555"))
        axis.setTextPen(pg.mkPen("#222"))
        axis.enableAutoSIPrefix(False)
    widget.setMinimumSize(260, 200)
    return widget


class ScatterChart(QWidget):
    """WER (y) against RTF (x) for each run; float baselines as red stars; hover for the plan."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot(
            "WER vs real-time factor", "WER %  (lower is better)", "RTF  (lower is faster)"
        )
        self.plot.getPlotItem().addLegend(offset=(-10, 10), labelTextColor="#222")
        self.plans = pg.ScatterPlotItem(
            size=11,
            brush=pg.mkBrush(PLAN_COLOR),
            pen=pg.mkPen("w"),
            hoverable=True,
            hoverSize=15,
            tip=self._tip,
            name="quantized",
        )
        self.baselines = pg.ScatterPlotItem(
            size=18,
            symbol="star",
            brush=pg.mkBrush(BASE_COLOR),
            pen=pg.mkPen("#7f0000"),
            hoverable=True,
            hoverSize=22,
            tip=self._tip,
            name="float baseline",
        )
        self.front = pg.PlotDataItem(
            pen=pg.mkPen(FRONT_COLOR, width=2, style=Qt.PenStyle.DashLine), name="Pareto front"
        )
        item = self.plot.getPlotItem()
        item.addItem(self.front)
        item.addItem(self.plans)
        item.addItem(self.baselines)
        self._labels: list[pg.TextItem] = []
        self.run_ids: list[int] = []
        self.front_ids: list[int] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    @staticmethod
    def _tip(x: float, y: float, data: object) -> str:
        return str(data)

    def set_rows(self, rows: Sequence[RunRow]) -> None:
        usable = [r for r in rows if r.run.wer is not None and r.run.rtf is not None]
        item = self.plot.getPlotItem()
        for label in self._labels:
            item.removeItem(label)
        self._labels = []
        plan_spots: list[dict[str, Any]] = []
        base_spots: list[dict[str, Any]] = []
        for row in usable:
            spot = {"pos": (row.run.rtf, row.run.wer), "data": plan_tooltip(row.run)}
            (base_spots if is_baseline(row.run) else plan_spots).append(spot)
        self.plans.setData(plan_spots)
        self.baselines.setData(base_spots)
        points = [(float(r.run.rtf), float(r.run.wer)) for r in usable]  # type: ignore[arg-type]
        front = pareto_front(points)
        self.front.setData([points[i][0] for i in front], [points[i][1] for i in front])
        self.run_ids = [r.run.id for r in usable]
        self.front_ids = [usable[i].run.id for i in front]
        font = QFont()
        font.setPointSize(8)
        for row in usable[:MAX_LABELS]:
            text = pg.TextItem(row.label, color="#333", anchor=(-0.1, 1.1))
            text.setFont(font)
            text.setPos(float(row.run.rtf), float(row.run.wer))  # type: ignore[arg-type]
            item.addItem(text)
            self._labels.append(text)
        self._fit(points)

    def _fit(self, points: list[tuple[float, float]]) -> None:
        """Show every point with room on the right and above for its label."""
        item = self.plot.getPlotItem()
        if not points:
            item.enableAutoRange()
            return
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x_span = (max(xs) - min(xs)) or max(abs(max(xs)) * 0.5, 0.01)
        y_span = (max(ys) - min(ys)) or max(abs(max(ys)) * 0.2, 1.0)
        item.setXRange(min(xs) - 0.1 * x_span, max(xs) + 0.35 * x_span, padding=0)
        item.setYRange(min(ys) - 0.12 * y_span, max(ys) + 0.25 * y_span, padding=0)


class BarChart(QWidget):
    """Horizontal bars, one per run, labelled on the left; a dashed line marks 1× (the baseline)."""

    def __init__(self, title: str, axis: str, color: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot(title, "", axis)
        self.color = color
        self.bars: pg.BarGraphItem | None = None
        self.one = pg.InfiniteLine(
            pos=1.0, angle=90, pen=pg.mkPen("#c62828", width=1, style=Qt.PenStyle.DashLine)
        )
        self.plot.getPlotItem().addItem(self.one)
        self.values: list[float] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def set_values(self, labels: Sequence[str], values: Sequence[float]) -> None:
        item = self.plot.getPlotItem()
        if self.bars is not None:
            item.removeItem(self.bars)
            self.bars = None
        self.values = list(values)
        positions = list(range(len(values)))
        if values:
            self.bars = pg.BarGraphItem(
                x0=0,
                y=positions,
                height=0.6,
                width=list(values),
                brush=pg.mkBrush(self.color),
                pen=pg.mkPen(self.color.darker(130)),
            )
            item.addItem(self.bars)
        item.getAxis("left").setTicks([list(zip(positions, labels, strict=True))])
        item.setYRange(-0.6, max(len(values), 1) - 0.4, padding=0)
        item.setXRange(0, max([1.0, *values]) * 1.1, padding=0)


class BarCharts(QWidget):
    """Speed-up and size reduction of each quantized run against its float baseline."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.speedup = BarChart("Speed-up vs float", "× faster (end-to-end RTF)", PLAN_COLOR)
        self.shrink = BarChart("Size reduction vs float", "× smaller (model bytes)", SIZE_COLOR)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.speedup)
        layout.addWidget(self.shrink)

    def set_rows(self, rows: Sequence[RunRow]) -> None:
        shown = [r for r in rows if not is_baseline(r.run) and r.baseline is not None]
        shown = sorted(shown, key=lambda r: r.run.id)[-MAX_BARS:]
        labels = [r.label for r in shown]
        self.speedup.set_values(labels, [r.speedup or 0.0 for r in shown])
        self.shrink.set_values(labels, [r.size_ratio or 0.0 for r in shown])
