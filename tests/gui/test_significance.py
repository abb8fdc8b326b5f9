"""The Results tab marks a ΔWER or speed-up whose 95 % interval includes no change (n.s.)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from speechquant.core.evaluation.results import Comparison
from speechquant.gui.comparison_panel import HEADERS as HEADERS_CMP
from speechquant.gui.results_view import ResultsView
from speechquant.gui.runs_table_model import HEADERS

from .test_window import fake_result

SOURCE = "replica:wav2vec2-tiny"
HYPS = ["hello world", "the cat sat"]


def _compared(history, plan: str, delta_ci, wer_ok: bool, speed_ci, speed_ok: bool) -> int:
    result = fake_result(SOURCE, plan, 12.0, 0.2, 1000, HYPS)
    result["comparison"] = Comparison(
        delta_wer=2.0, delta_wer_ci=delta_ci, p_worse=None, speedup=1.1, speedup_ci=speed_ci,
        speedup_encoder=None, speedup_encoder_ci=None, size_ratio=4.0, significant_wer=wer_ok,
        significant_speed=speed_ok, baseline_started_at=None, paired=True,
    ).to_json()  # fmt: skip
    return history.add_run(result, kind="compare", group_id="g")


def _cells(view: ResultsView, header: str) -> dict[int, str]:
    column = HEADERS.index(header)
    return {
        int(view.proxy.index(r, 0).data()): view.proxy.index(r, column).data()
        for r in range(view.proxy.rowCount())
    }


def test_intervals_that_include_no_change_are_marked_n_s(qtbot, history):
    base = history.add_run(
        fake_result(SOURCE, None, 10.0, 0.4, 4000, HYPS), kind="baseline", group_id="g"
    )
    noise = _compared(history, "noise", [-1.0, 5.0], False, [0.9, 1.3], False)
    real = _compared(history, "real", [0.5, 3.5], True, [1.05, 1.2], True)
    untested = _compared(history, "no-ci", None, False, None, False)
    view = ResultsView(history, confirm=False)
    qtbot.addWidget(view)
    view.set_current_source(SOURCE)
    assert _cells(view, "ΔWER") == {
        base: "+0.00",
        noise: "+2.00 n.s.",
        real: "+2.00",
        untested: "+2.00",
    }
    assert _cells(view, "speed-up") == {
        base: "1.00×",
        noise: "1.10× n.s.",
        real: "1.10×",
        untested: "1.10×",
    }
    assert "n.s.: not significant" in view.count.text()
    tip = view.model.headerData(HEADERS.index("ΔWER"), Qt.Orientation.Horizontal,
                                Qt.ItemDataRole.ToolTipRole)  # fmt: skip
    assert "n.s." in tip and "includes no change" in tip
    assert "+2.00 n.s." in view.table_csv()


def test_no_note_when_nothing_is_marked(qtbot, history):
    history.add_run(fake_result(SOURCE, None, 10.0, 0.4, 4000, HYPS), kind="baseline", group_id="g")
    _compared(history, "real", [0.5, 3.5], True, [1.05, 1.2], True)
    view = ResultsView(history, confirm=False)
    qtbot.addWidget(view)
    view.set_current_source(SOURCE)
    assert "n.s." not in view.count.text()


def test_the_comparison_marks_a_speed_up_whose_interval_includes_one(qtbot, history):
    base = history.add_run(
        fake_result(SOURCE, None, 10.0, 0.4, 4000, HYPS), kind="baseline", group_id="g"
    )
    noise = _compared(history, "noise", [-1.0, 5.0], False, [0.9, 1.3], False)
    real = _compared(history, "real", [0.5, 3.5], True, [1.05, 1.2], True)
    view = ResultsView(history, confirm=False)
    qtbot.addWidget(view)
    view.set_current_source(SOURCE)
    speed = HEADERS_CMP.index("speed-up")
    view.compare(base, noise)
    assert view.comparison.item(0, speed).text() == "1.00×"
    assert view.comparison.item(1, speed).text() == "1.10× n.s."
    assert "0.90× – 1.30×" in view.comparison.item(1, speed).toolTip()
    view.compare(base, real)
    assert view.comparison.item(1, speed).text() == "1.10×"
    assert "n.s." not in view.comparison.item(1, speed).toolTip()
