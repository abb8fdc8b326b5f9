"""The WER-vs-RTF chart file: points, Pareto front, and WER intervals as error bars."""

from __future__ import annotations

import matplotlib.axes

from speechquant.core.evaluation.plots import plot_wer_vs_rtf


def results(with_intervals: bool) -> list[dict]:
    rows = [
        {"source": "m", "plan": None, "rtf": 0.2, "wer": 7.0, "wer_ci": [5.0, 9.5]},
        {
            "source": "m",
            "plan": {"name": "all-dynamic"},
            "rtf": 0.1,
            "wer": 7.5,
            "wer_ci": [5.5, 10.0],
        },
    ]
    if not with_intervals:
        for row in rows:
            del row["wer_ci"]
    return rows


def test_chart_draws_the_wer_intervals_as_error_bars(tmp_path, monkeypatch):
    drawn = []
    original = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, *args, **kwargs):
        drawn.append((list(x), list(y), kwargs["yerr"]))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    out = plot_wer_vs_rtf(results(True), tmp_path / "chart.png")
    assert out.stat().st_size > 5000
    assert drawn == [([0.2, 0.1], [7.0, 7.5], [[2.0, 2.0], [2.5, 2.5]])]
    drawn.clear()
    plot_wer_vs_rtf(results(False), tmp_path / "plain.png")
    assert drawn == []
