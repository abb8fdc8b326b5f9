"""pyqtgraph charts of the run history: WER vs RTF with the Pareto front, speed-up and size bars."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from speechquant.core.evaluation.pareto import pareto_front
from speechquant.core.evaluation.run_notes import note_preview
from speechquant.core.evaluation.runs import RunRow, is_baseline, run_label
from speechquant.core.formatting import format_bytes

from .results_filter import StoredFacts, front_group, subset_label

Facts = Callable[[int], StoredFacts]
LABEL_CHARS = 32
"""The longest run label drawn on a chart (its tooltip has the whole label)."""


def chart_label(row: RunRow) -> str:
    """A run's label on a chart: :func:`run_label`, cut to :data:`LABEL_CHARS`."""
    label = run_label(row)
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1].rstrip() + "…"


def run_tooltip(row: RunRow, facts: StoredFacts) -> str:
    """What hovering a point says: the run, its own name, tags and note, its figures with
    intervals, its setup."""
    run = row.run
    head = run_label(row)
    if is_baseline(run) and run.plan_name:
        head += " (an export, measured as is)"
    elif is_baseline(run):
        head += " (float baseline)" if run.name else " baseline"
    lines = [head]
    if run.name:
        lines.append(f"plan: {run.plan_name or 'float32'}")
    lines.append(f"schemes: {run.plan_summary}")
    if run.tags:
        lines.append(f"tags: {', '.join(run.tags)}")
    if run.note:
        lines.append(f"note: {note_preview(run.note, 80)}")
    if run.wer is not None:
        ci = f" (95 % CI {facts.wer_ci[0]:.1f}–{facts.wer_ci[1]:.1f})" if facts.wer_ci else ""
        lines.append(f"WER {run.wer:.2f} %{ci}")
    if row.delta_wer is not None and row.baseline is not None:
        lines.append(f"ΔWER {row.delta_wer:+.2f} against {run_label(row.baseline)}")
    if run.rtf is not None:
        speed = f", {row.speedup:.2f}× the float speed" if row.speedup and row.baseline else ""
        lines.append(f"RTF {run.rtf:.3f}{speed}")
    if run.model_bytes is not None:
        lines.append(f"size {format_bytes(run.model_bytes)}")
    lines.append(f"{subset_label(run)}, {run.threads} threads, {run.engine}")
    if facts.machine_label:
        lines.append(f"machine: {facts.machine_label}")
    return "\n".join(lines)


PLAN_COLOR = QColor("#1f5fae")
BASE_COLOR = QColor("#c62828")
FRONT_COLOR = QColor("#ef8f00")
SIZE_COLOR = QColor("#2e7d32")
MAX_LABELS = 14
LEGEND_CORNERS = {(1, 0): "top-right", (0, 0): "top-left", (1, 1): "bottom-right",
                  (0, 1): "bottom-left"}  # fmt: skip
MAX_BARS = 12
MIN_CHART_HEIGHT = 140
"""Low enough that the Sensitivity tab's two stacked charts fit a 700-pixel-high window."""


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
    widget.setMinimumSize(260, MIN_CHART_HEIGHT)
    return widget


class ScatterChart(QWidget):
    """WER (y) against RTF (x) for each run; float baselines as red stars; hover for the plan."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot(
            "WER vs real-time factor", "WER %  (lower is better)", "RTF  (lower is faster)"
        )
        self.legend = self.plot.getPlotItem().addLegend(offset=(-10, -10), labelTextColor="#222")
        self.legend.setBrush(pg.mkBrush(255, 255, 255, 210))
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
        self.errors = pg.ErrorBarItem(beam=0.0, pen=pg.mkPen("#555", width=1))
        self.errors.setVisible(False)
        self.error_count = 0
        self.error_span: tuple[float, float] | None = None
        """The lowest and highest WER the drawn intervals reach (the view includes them)."""
        self.front_groups = 0
        self._extra_fronts: list[pg.PlotDataItem] = []
        item = self.plot.getPlotItem()
        item.addItem(self.errors)
        item.addItem(self.front)
        item.addItem(self.plans)
        item.addItem(self.baselines)
        self._labels: list[pg.TextItem] = []
        """The run labels drawn beside front points."""
        self._points: list[tuple[float, float]] = []
        self.legend_corner = "top-right"
        self.plot.getPlotItem().getViewBox().sigResized.connect(self.place_legend)
        self.run_ids: list[int] = []
        self.front_ids: list[int] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    @staticmethod
    def _tip(x: float, y: float, data: object) -> str:
        return str(data)

    def label_texts(self) -> list[str]:
        """The labels drawn beside the points, in drawing order."""
        return [text.toPlainText() for text in self._labels]

    def tooltips(self) -> list[str]:
        """What hovering each point says (quantized runs, then float baselines)."""
        return [str(tip) for item in (self.plans, self.baselines) for tip in item.data["data"]]

    def set_rows(self, rows: Sequence[RunRow], facts: Facts) -> None:
        """Plot ``rows``; one Pareto front per group of runs sharing data, subset, threads and
        machine; labels only on front points; WER intervals as error bars where stored."""
        usable = [r for r in rows if r.run.wer is not None and r.run.rtf is not None]
        item = self.plot.getPlotItem()
        for label in self._labels:
            item.removeItem(label)
        self._labels = []
        plan_spots: list[dict[str, Any]] = []
        base_spots: list[dict[str, Any]] = []
        for row in usable:
            spot = {"pos": (row.run.rtf, row.run.wer), "data": run_tooltip(row, facts(row.run.id))}
            (base_spots if is_baseline(row.run) else plan_spots).append(spot)
        self.plans.setData(plan_spots)
        self.baselines.setData(base_spots)
        points = [(float(r.run.rtf), float(r.run.wer)) for r in usable]  # type: ignore[arg-type]
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, row in enumerate(usable):
            groups.setdefault(front_group(row, facts(row.run.id)), []).append(i)
        xs: list[float] = []
        ys: list[float] = []
        front_rows: list[int] = []
        for members in groups.values():
            front = [members[j] for j in pareto_front([points[i] for i in members])]
            front_rows.extend(front)
            if len(front) < 2:  # one run dominates the rest: labelled, no line
                continue
            xs += [points[i][0] for i in front] + [float("nan")]
            ys += [points[i][1] for i in front] + [float("nan")]
        self._draw_fronts(xs, ys)
        self._errors(usable, facts)
        self.run_ids = [r.run.id for r in usable]
        self.front_ids = [usable[i].run.id for i in front_rows]
        font = QFont()
        font.setPointSize(8)
        labelled = front_rows if front_rows else list(range(len(usable)))[:MAX_LABELS]
        for i in labelled[:MAX_LABELS]:
            row = usable[i]
            text = pg.TextItem(chart_label(row), color="#333", anchor=(-0.1, 1.1))
            text.setFont(font)
            text.setPos(float(row.run.rtf), float(row.run.wer))  # type: ignore[arg-type]
            item.addItem(text)
            self._labels.append(text)
        self._legend_for(bool(plan_spots), bool(base_spots), bool(xs))
        self._fit(points, self.error_span)
        self._points = points
        self.place_legend()

    def _draw_fronts(self, xs: list[float], ys: list[float]) -> None:
        """One dashed line per setup group (``xs``/``ys`` hold the groups split by NaN)."""
        item = self.plot.getPlotItem()
        for extra in self._extra_fronts:
            item.removeItem(extra)
        self._extra_fronts = []
        lines: list[tuple[list[float], list[float]]] = [([], [])]
        for x, y in zip(xs, ys, strict=True):
            if x != x:
                lines.append(([], []))
            else:
                lines[-1][0].append(x)
                lines[-1][1].append(y)
        lines = [line for line in lines if line[0]]
        self.front_groups = len(lines)
        self.front.setData(*(lines[0] if lines else ([], [])))
        for line_x, line_y in lines[1:]:
            extra = pg.PlotDataItem(line_x, line_y, pen=self.front.opts["pen"])
            item.addItem(extra)
            self._extra_fronts.append(extra)

    def _errors(self, usable: Sequence[RunRow], facts: Facts) -> None:
        """Vertical bars for the stored WER 95 % intervals (none drawn when absent)."""
        x, y, top, bottom = [], [], [], []
        for row in usable:
            ci = facts(row.run.id).wer_ci
            if ci is None:
                continue
            wer = float(row.run.wer)  # type: ignore[arg-type]
            x.append(float(row.run.rtf))  # type: ignore[arg-type]
            y.append(wer)
            top.append(max(0.0, ci[1] - wer))
            bottom.append(max(0.0, wer - ci[0]))
        self.error_count = len(x)
        self.error_span = (
            (
                min(w - b for w, b in zip(y, bottom, strict=True)),
                max(w + t for w, t in zip(y, top, strict=True)),
            )
            if x
            else None
        )
        if x:
            self.errors.setData(
                x=np.array(x), y=np.array(y), top=np.array(top), bottom=np.array(bottom)
            )
            self.errors.setVisible(True)
        else:
            self.errors.setVisible(False)

    def _legend_for(self, plans: bool, baselines: bool, front: bool) -> None:
        """The legend lists only what is drawn."""
        legend = self.legend
        legend.clear()
        if plans:
            legend.addItem(self.plans, "quantized")
        if baselines:
            legend.addItem(self.baselines, "float baseline")
        if front:
            legend.addItem(self.front, "Pareto front (same data, subset, machine)")
        legend.setVisible(plans or baselines)

    def place_legend(self, *_: Any) -> None:
        """Put the legend in the first corner (top-right, top-left, bottom-right, bottom-left)
        where it covers no point, else where it covers the fewest."""
        view = self.plot.getPlotItem().getViewBox()
        (x0, x1), (y0, y1) = view.viewRange()
        box = self.legend.boundingRect()
        width = min(0.6, box.width() / view.width()) if view.width() > 0 else 0.4
        height = min(0.6, box.height() / view.height()) if view.height() > 0 else 0.35
        spots = [
            ((x - x0) / ((x1 - x0) or 1), (y1 - y) / ((y1 - y0) or 1)) for x, y in self._points
        ]

        def covered(corner: tuple[int, int]) -> int:
            right, bottom = corner
            return sum(
                1
                for fx, fy in spots
                if (fx >= 1 - width if right else fx <= width)
                and (fy >= 1 - height if bottom else fy <= height)
            )

        corner = min(LEGEND_CORNERS, key=covered)  # min keeps the first of equals
        self.legend_corner = LEGEND_CORNERS[corner]
        right, bottom = corner
        self.legend.anchor(
            itemPos=(right, bottom), parentPos=(right, bottom),
            offset=(-10 if right else 10, -10 if bottom else 10),
        )  # fmt: skip

    def _fit(
        self, points: list[tuple[float, float]], span: tuple[float, float] | None = None
    ) -> None:
        """Show every point with room on the right and above for its label, and the WER
        intervals' whole ``span`` (low, high) when given."""
        item = self.plot.getPlotItem()
        if not points:  # nothing to show: a neutral range, not the previous model's
            item.setXRange(0.0, 1.0, padding=0)
            item.setYRange(0.0, 100.0, padding=0)
            return
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ys += list(span) if span is not None else []
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
        self.labels: list[str] = []
        self.errors = pg.ErrorBarItem(beam=0.2, pen=pg.mkPen("#222", width=1))
        self.errors.setVisible(False)
        self.error_count = 0
        self.plot.getPlotItem().addItem(self.errors)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def set_values(
        self,
        labels: Sequence[str],
        values: Sequence[float],
        intervals: Sequence[Any] | None = None,
    ) -> None:
        """Bars for ``values``; ``intervals`` (``[lo, hi]`` or None per bar) as error bars."""
        item = self.plot.getPlotItem()
        if self.bars is not None:
            item.removeItem(self.bars)
            self.bars = None
        self.values = list(values)
        self.labels = list(labels)
        reach = self._errors(values, intervals or [])
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
        item.setXRange(0, max([1.0, *values, *reach]) * 1.1, padding=0)

    def _errors(self, values: Sequence[float], intervals: Sequence[Any]) -> list[float]:
        """Draw the intervals; returns how far right each one reaches (the view includes it)."""
        xs, ys, left, right = [], [], [], []
        for i, (value, ci) in enumerate(zip(values, intervals, strict=False)):
            if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
                xs.append(value)
                ys.append(float(i))
                left.append(max(0.0, value - float(ci[0])))
                right.append(max(0.0, float(ci[1]) - value))
        self.error_count = len(xs)
        if xs:
            self.errors.setData(
                x=np.array(xs), y=np.array(ys), left=np.array(left), right=np.array(right)
            )
        self.errors.setVisible(bool(xs))
        return [x + r for x, r in zip(xs, right, strict=True)]


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

    def set_rows(self, rows: Sequence[RunRow], facts: Facts) -> None:
        shown = [r for r in rows if not is_baseline(r.run) and r.baseline is not None]
        shown = sorted(shown, key=lambda r: r.run.id)[-MAX_BARS:]
        labels = [chart_label(r) for r in shown]
        timed = [r for r in shown if r.speedup is not None]  # paired with a float run
        self.speedup.set_values(
            [chart_label(r) for r in timed],
            [float(r.speedup or 0.0) for r in timed],
            [list(r.speedup_ci) if r.speedup_ci else None for r in timed],
        )
        self.shrink.set_values(labels, [r.size_ratio or 0.0 for r in shown])
