"""The Results tab marks a ΔWER or speed-up whose 95 % interval includes no change (n.s.)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from speechquant.core.evaluation.results import Comparison
from speechquant.core.evaluation.tables import significance
from speechquant.gui.comparison_panel import HEADERS as HEADERS_CMP
from speechquant.gui.results_view import ResultsView
from speechquant.gui.runs_table_model import HEADERS

from .test_window import fake_result

SOURCE = "replica:wav2vec2-tiny"
HYPS = ["hello world", "the cat sat"]


def _compared(
    history, plan: str, delta_ci, wer_ok: bool, speed_ci, speed_ok: bool, hyps=HYPS, drop=()
) -> int:
    result = fake_result(SOURCE, plan, 12.0, 0.2, 1000, hyps)
    result["comparison"] = Comparison(
        delta_wer=2.0, delta_wer_ci=delta_ci, p_worse=None, speedup=1.1, speedup_ci=speed_ci,
        speedup_encoder=None, speedup_encoder_ci=None, size_ratio=4.0, significant_wer=wer_ok,
        significant_speed=speed_ok, baseline_started_at=None, paired=True,
    ).to_json()  # fmt: skip
    for key in drop:
        del result["comparison"][key]
    return history.add_run(result, kind="compare", group_id="g")


def _baseline(history) -> int:
    return history.add_run(
        fake_result(SOURCE, None, 10.0, 0.4, 4000, HYPS), kind="baseline", group_id="g"
    )


def _view(qtbot, history) -> ResultsView:
    view = ResultsView(history, confirm=False)
    qtbot.addWidget(view)
    view.set_current_source(SOURCE)
    return view


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


@pytest.mark.parametrize(
    ("speed_ci", "stored_flag", "marked"),
    [
        ([0.9, 1.3], True, True),
        ([1.0, 1.3], True, True),
        ([0.8, 1.0], True, True),
        ([1.05, 1.2], False, False),
        ([0.7, 0.95], False, False),
    ],
)
def test_both_widgets_mark_a_speed_up_by_its_interval_not_its_stored_flag(
    qtbot, history, speed_ci, stored_flag, marked
):
    base = _baseline(history)
    run = _compared(history, "plan", [0.5, 3.5], True, speed_ci, stored_flag)
    view = _view(qtbot, history)
    assert (significance(history.get_run(run)["comparison"]).speed is False) is marked
    expected = "1.10× n.s." if marked else "1.10×"
    assert _cells(view, "speed-up")[run] == expected
    view.compare(base, run)
    cell = view.comparison.item(1, HEADERS_CMP.index("speed-up"))
    assert cell.text() == expected
    assert ("n.s.: it includes no change" in cell.toolTip()) is marked


def test_the_table_marks_a_stored_delta_wer_by_its_interval_not_its_stored_flag(qtbot, history):
    _baseline(history)
    noise = _compared(history, "noise", [-1.0, 5.0], True, [1.05, 1.2], True)
    touching = _compared(history, "touching", [0.0, 3.5], True, [1.05, 1.2], True)
    clear = _compared(history, "clear", [0.5, 3.5], False, [1.05, 1.2], False)
    view = _view(qtbot, history)
    cells = _cells(view, "ΔWER")
    assert (cells[noise], cells[touching], cells[clear]) == ("+2.00 n.s.", "+2.00 n.s.", "+2.00")
    assert "n.s.: not significant" in view.count.text()


def test_the_table_marks_old_runs_stored_without_the_flags_by_their_intervals(qtbot, history):
    _baseline(history)
    flags = ("significant_wer", "significant_speed")
    old = _compared(history, "old", [-1.0, 5.0], True, [0.9, 1.3], True, drop=flags)
    bare = _compared(history, "bare", [-1.0, 5.0], True, [0.9, 1.3], True,
                     drop=(*flags, "delta_wer_ci", "speedup_ci"))  # fmt: skip
    view = _view(qtbot, history)
    assert _cells(view, "ΔWER")[old] == "+2.00 n.s."
    assert _cells(view, "speed-up")[old] == "1.10× n.s."
    assert _cells(view, "ΔWER")[bare] == "+2.00"
    assert _cells(view, "speed-up")[bare] == "1.10×"


def test_the_comparison_marks_its_delta_wer_by_the_paired_interval(qtbot, history):
    base = _baseline(history)
    same = _compared(history, "same", None, False, [1.05, 1.2], True)
    wrong = _compared(history, "wrong", None, False, [1.05, 1.2], True,
                      hyps=["yellow word", "a hat sat"])  # fmt: skip
    view = _view(qtbot, history)
    delta = HEADERS_CMP.index("ΔWER")
    view.compare(base, same)
    assert view.comparison.item(1, delta).text() == "+0.00 n.s."
    assert "+0.00 – +0.00; n.s.: it includes no change" in view.comparison.item(1, delta).toolTip()
    view.compare(base, wrong)
    assert view.comparison.item(1, delta).text() == "+80.00"
    assert "n.s." not in view.comparison.item(1, delta).toolTip()
