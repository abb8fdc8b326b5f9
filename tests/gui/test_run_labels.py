"""A run's own name where runs are compared: the comparison panel (with tags and note), the
charts' labels and tooltips, the utterance view and the log; a rename refreshes them all."""

from __future__ import annotations

import pytest

from speechquant.core.evaluation.results import Comparison
from speechquant.gui.comparison_panel import HEADERS
from speechquant.gui.jobs import RunOutcome, describe

from .test_window import fake_result

SOURCE = "replica:wav2vec2-tiny"
NOTE = "measured before the engine change, with the new calibration set and four threads\nline 2"


@pytest.fixture
def runs(history):
    base = history.add_run(
        fake_result(SOURCE, None, 10.0, 0.4, 4000, ["hello world", "the cat sat"]),
        kind="baseline",
        group_id="g",
    )
    timed = fake_result(SOURCE, "all-dynamic", 12.0, 0.2, 1000, ["hello word", "the cat sat"])
    timed["comparison"] = Comparison(
        delta_wer=2.0, delta_wer_ci=None, p_worse=None, speedup=1.9, speedup_ci=[1.7, 2.1],
        speedup_encoder=None, speedup_encoder_ci=None, size_ratio=4.0, significant_wer=False,
        significant_speed=True, baseline_started_at=None, paired=True,
    ).to_json()  # fmt: skip
    fast = history.add_run(timed, kind="compare", group_id="g")
    return base, fast


def _cell(results, row: int, header: str):
    return results.comparison.item(row, HEADERS.index(header))


def _ticks(chart) -> list[str]:
    """The category labels pyqtgraph draws on a bar chart's left axis."""
    levels = chart.plot.getPlotItem().getAxis("left")._tickLevels
    return [text for _, text in levels[0]]


def _shown(window) -> dict[str, object]:
    results = window.results
    return {
        "panel": [_cell(results, r, "run").text() for r in range(2)],
        "title": results.comparison_box.title(),
        "points": results.scatter.label_texts(),
        "speed-up bars": _ticks(results.bars.speedup),
        "size bars": results.bars.shrink.labels,
        "pickers": [window.utterances.first.currentText(), window.utterances.second.currentText()],
    }


def test_a_rename_shows_in_the_comparison_charts_and_utterances(qtbot, window, history, runs):
    base, fast = runs
    results = window.results
    results.set_current_source(SOURCE)
    results.compare(base, fast)
    assert _shown(window) == {
        "panel": [f"#{base} float32", f"#{fast} all-dynamic"],
        "title": f"Comparison: #{fast} all-dynamic against #{base} float32",
        "points": [f"#{fast} all-dynamic", f"#{base} float32"],
        "speed-up bars": [f"#{fast} all-dynamic"],
        "size bars": [f"#{fast} all-dynamic"],
        "pickers": [f"#{base} float32", f"#{fast} all-dynamic (dynamic×1)"],
    }
    assert _cell(results, 1, "tags").text() == "-" and _cell(results, 1, "note").text() == "-"

    dialog = results.edit_notes(fast)
    dialog.name.setText("int8 everywhere")
    dialog.tags.setText("keep, paper")
    dialog.note.setPlainText(NOTE)
    dialog.accept()
    assert not dialog.isVisible()
    named = f"#{fast} int8 everywhere"
    assert _shown(window) == {
        "panel": [f"#{base} float32", named],
        "title": f"Comparison: {named} against #{base} float32",
        "points": [named, f"#{base} float32"],
        "speed-up bars": [named],
        "size bars": [named],
        "pickers": [f"#{base} float32", f"{named} (all-dynamic: dynamic×1)"],
    }
    assert _cell(results, 1, "tags").text() == "keep, paper"
    note = _cell(results, 1, "note")
    assert note.text().startswith("measured before") and note.text().endswith("…")
    assert len(note.text()) < len(NOTE) and note.toolTip() == NOTE
    assert _cell(results, 1, "run").toolTip() == "plan: all-dynamic"
    tip = next(t for t in results.scatter.tooltips() if t.startswith(named))
    assert "plan: all-dynamic" in tip and "tags: keep, paper" in tip and "note: measured" in tip
    page = window.utterances.browser.toPlainText()
    assert named in page and "all-dynamic" not in page.split("\n")[0]

    # a baseline is named too, and clearing a name brings the plan's label back
    history.annotate(base, name="reference")
    dialog = results.edit_notes(fast)
    dialog.name.setText("")
    dialog.accept()
    shown = _shown(window)
    assert shown["panel"] == [f"#{base} reference", f"#{fast} all-dynamic"]
    assert shown["speed-up bars"] == [f"#{fast} all-dynamic"]
    assert f"#{base} reference" in shown["points"]
    tip = next(t for t in results.scatter.tooltips() if t.startswith(f"#{fast}"))
    assert f"against #{base} reference" in tip


def test_a_long_name_is_cut_on_the_charts_but_whole_in_the_tooltip(qtbot, window, history, runs):
    base, fast = runs
    long_name = "int8 encoder, bf16 decoder, static attention with histogram observers"
    history.annotate(fast, name=long_name)
    results = window.results
    results.set_current_source(SOURCE)
    [bar] = results.bars.shrink.labels
    assert bar.startswith(f"#{fast} int8 encoder") and bar.endswith("…") and len(bar) <= 32
    assert bar in results.scatter.label_texts()
    assert any(t.startswith(f"#{fast} {long_name}") for t in results.scatter.tooltips())


def test_log_lines_and_deletes_name_runs_by_their_label(qtbot, window, history, runs):
    base, fast = runs
    stored = [history.get_run(base), history.get_run(fast)]
    line = describe(RunOutcome(SOURCE, stored[0], base, True, stored[1], fast, [], "reference"))
    assert line.startswith(f"#{fast} all-dynamic: WER 12.00 %")
    assert f"against #{base} reference (cached): WER 10.00 %" in line
    history.annotate(fast, name="to go")
    results = window.results
    results.set_current_source(SOURCE)
    results.select_ids([fast])
    results.delete_selected()
    assert f"deleted run(s) #{fast} to go" in window.run_panel.log.toPlainText()
