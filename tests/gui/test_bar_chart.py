"""The speed-up bars: the view includes each bar's whole 95 % interval."""

from __future__ import annotations

from speechquant.gui.charts import PLAN_COLOR, BarChart


def test_the_view_includes_intervals_reaching_past_the_longest_bar(qtbot):
    chart = BarChart("Speed-up vs float", "× faster", PLAN_COLOR)
    qtbot.addWidget(chart)
    chart.set_values(["#2 all-dynamic", "#3 bf16"], [1.9, 0.4], [[1.7, 2.6], [0.3, 0.5]])
    assert chart.error_count == 2
    low, high = chart.plot.getPlotItem().viewRange()[0]
    assert low == 0.0 and high >= 2.6  # the right end of the first interval is drawn


def test_without_intervals_the_view_fits_the_bars_and_the_one_line(qtbot):
    chart = BarChart("Speed-up vs float", "× faster", PLAN_COLOR)
    qtbot.addWidget(chart)
    chart.set_values(["#2 bf16"], [0.4], [None])
    assert chart.error_count == 0
    low, high = chart.plot.getPlotItem().viewRange()[0]
    assert low == 0.0 and 1.0 <= high <= 1.2  # the dashed 1× line shows
