"""Run ▸ Sensitivity analysis and Suggest plan…: worker runs, tree colours, table, chart, plan."""

from __future__ import annotations

import pytest
import soundfile as sf
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush

from speechquant.core.data.audio import load_audio
from speechquant.core.progress import Progress
from speechquant.core.quantization.plan import Plan
from speechquant.gui import search_action
from speechquant.gui.suggest_dialog import SuggestChoice, SuggestDialog

from ..helpers import fixed_waves
from .helpers import fast_settings

RUN_TIMEOUT = 120_000
W2V = "encoder.wav2vec2.model"
LAYER0 = W2V + ".encoder.layers.0"


@pytest.fixture(scope="module")
def own_data(tmp_path_factory, tiny_model):
    """Seven 1 s clips whose references are the float model's own transcripts (float WER 0)."""
    root = tmp_path_factory.mktemp("sens-data")
    for i, wave in enumerate(fixed_waves(7, seconds=1.0)):
        sf.write(root / f"utt{i}.wav", wave.numpy(), 16000)
        (root / f"utt{i}.txt").write_text(
            tiny_model.transcribe(load_audio(root / f"utt{i}.wav", 16000))
        )
    return root


def _background(window, path: str):
    model = window.tree_model
    return model.data(model.index_of(path), Qt.ItemDataRole.BackgroundRole)


def test_sensitivity_fills_table_chart_and_tree_colours(qtbot, window, own_data):
    fast_settings(window, own_data, limit=3)
    analyzer, view = window.analyzer, window.analyzer.view
    assert analyzer.sensitivity_action.isEnabled()
    plan_before = window.plan.to_dict()
    with qtbot.waitSignal(analyzer.sensitivityDone, timeout=RUN_TIMEOUT) as done:
        assert analyzer.run_sensitivity(("dynamic", "bf16"))
        assert window.job is not None and not window.run_panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    result = done.args[0]
    assert len(result.ids) == 3 and result.schemes == ["dynamic", "bf16"]
    assert view.table.rowCount() == len(result.rows) > 5
    deltas = [float(view.table.item(i, 2).text()) for i in range(view.table.rowCount())]
    assert deltas == sorted(deltas)  # ranked, least harmful first
    units = {view.table.item(i, 0).text() for i in range(view.table.rowCount())}
    assert units == {u.name for u in result.units}
    assert any(view.table.item(i, 6).text() != "-" for i in range(view.table.rowCount()))  # LOO
    assert set(view.unit_points) == {"dynamic", "bf16"}
    assert len(view.unit_points["dynamic"].data) == sum(r.scheme == "dynamic" for r in result.rows)
    assert window.plan.to_dict() == plan_before

    # the units' modules are coloured, with their figures in the tooltip; others are not
    brush = _background(window, LAYER0)
    assert isinstance(brush, QBrush)
    model = window.tree_model
    tip = model.data(model.index_of(LAYER0), Qt.ItemDataRole.ToolTipRole)
    assert "ΔWER" in tip and "speed-up" in tip and "dynamic" in tip
    assert _background(window, "encoder") is None
    assert "ΔWER" in view.legend.text()
    view.color_by.setCurrentText("speed-up")
    assert "speed-up" in view.legend.text()
    assert isinstance(_background(window, LAYER0), QBrush)
    view.scheme.setCurrentText("bf16")
    assert "bf16" in view.legend.text()
    assert "reused" in window.run_panel.log.toPlainText()

    # opening the model again forgets the colours and the table
    window.set_model(window.model)
    assert view.table.rowCount() == 0 and _background(window, LAYER0) is None


def test_cancelled_sensitivity_resumes_from_the_history(qtbot, window, own_data, monkeypatch):
    fast_settings(window, own_data, limit=3)
    analyzer = window.analyzer
    real = search_action.run_sensitivity

    def cancel_at_third(*args, progress, cancel, **kwargs):
        def watch(update: Progress) -> None:
            if update.stage == "sensitivity" and update.done == 3:
                cancel.cancel()  # from the worker thread, like the Cancel button's token
            progress(update)

        return real(*args, progress=watch, cancel=cancel, **kwargs)

    monkeypatch.setattr(search_action, "run_sensitivity", cancel_at_third)
    finished = []
    analyzer.sensitivityDone.connect(finished.append)
    with qtbot.waitSignal(window.jobFinished, timeout=RUN_TIMEOUT):
        assert analyzer.run_sensitivity(("dynamic",))
    assert finished == [] and window.job is None
    log = window.run_panel.log.toPlainText()
    assert "sensitivity cancelled" in log and "run it again to resume" in log
    assert analyzer.view.table.rowCount() == 0
    assert window.run_panel.run_button.isEnabled()

    monkeypatch.setattr(search_action, "run_sensitivity", real)
    with qtbot.waitSignal(analyzer.sensitivityDone, timeout=RUN_TIMEOUT) as done:
        assert analyzer.run_sensitivity(("dynamic",))
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    result = done.args[0]
    assert result.reused == 2 and result.computed > 0  # two plans finished before the cancel
    assert result.baseline.cached
    assert analyzer.view.table.rowCount() == len(result.rows)


def test_suggest_plan_loads_a_plan_within_the_budget(qtbot, window, own_data):
    fast_settings(window, own_data, limit=0)  # all 7: 1 calibration, 3 search, 3 evaluation
    analyzer, view = window.analyzer, window.analyzer.view
    budget = 20.0
    choice = SuggestChoice(
        max_wer_increase=budget, objective="size", schemes=("dynamic", "bf16"),
        engines=("x86",), search_n=3, max_evals=8,
    )  # fmt: skip
    with qtbot.waitSignal(analyzer.searchDone, timeout=RUN_TIMEOUT) as done:
        assert analyzer.suggest(choice)
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    result = done.args[0]
    assert result.search.delta_wer <= budget
    assert result.search.model_bytes < result.search_baseline.model_bytes
    assert window.plan.entries == result.plan.entries and window.plan.entries
    assert window.plan.name == result.plan.name
    assert window.settings_panel.engine.currentText() == result.plan.settings.engine
    # every plan tried is a point; the float model a star; the Pareto front drawn
    assert len(view.tried.data) + len(view.float_point.data) == len(result.steps)
    assert len(view.found.data) == 1
    assert len(view.front.xData) == len(result.pareto()) > 0
    assert view.table.rowCount() == len(result.sensitivity.rows)
    assert "suggested plan" in window.run_panel.log.toPlainText()
    assert window.run_panel.run_button.isEnabled()


def test_failures_leave_the_app_usable(qtbot, window, own_data, tmp_path):
    analyzer = window.analyzer
    fast_settings(window, own_data, limit=0)
    window.tree_model.set_plan(Plan(entries={LAYER0: "dynamic"}, name="mine"))
    before = window.plan.to_dict()
    # too few utterances for the search split: the job fails, the plan stays
    choice = SuggestChoice(max_wer_increase=1.0, engines=("x86",), search_n=50)
    with qtbot.waitSignal(window.jobFailed, timeout=RUN_TIMEOUT) as failed:
        assert analyzer.suggest(choice)
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert "search" in failed.args[0]
    assert window.plan.to_dict() == before
    # a dataset that does not exist
    window.settings_panel.dataset.setText(str(tmp_path / "missing"))
    assert not analyzer.run_sensitivity(("dynamic",))  # refused before a job starts
    assert window.job is None and "does not exist" in window.run_panel.log.toPlainText()
    # no scheme chosen: refused by core's settings before any job starts, reported
    window.settings_panel.dataset.setText(str(own_data))
    assert not analyzer.suggest(SuggestChoice(engines=("x86",), schemes=(), search_n=3))
    assert window.job is None and "at least one scheme" in window.run_panel.log.toPlainText()
    # a negative budget is refused before any job starts
    assert not analyzer.suggest(SuggestChoice(max_wer_increase=-1.0, search_n=3))
    assert window.job is None and window.plan.to_dict() == before
    errors = window.run_panel.log.toPlainText()
    assert "WER budget" in errors and "--" not in errors  # names the setting, not a CLI flag
    # and the app still runs a sensitivity analysis afterwards
    fast_settings(window, own_data, limit=3)
    with qtbot.waitSignal(analyzer.sensitivityDone, timeout=RUN_TIMEOUT):
        assert analyzer.run_sensitivity(("bf16",))
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert window.plan.to_dict() == before


def test_suggest_dialog_round_trips_the_choice(qtbot):
    choice = SuggestChoice(2.5, "size", ("dynamic",), ("x86",), 7, 11)
    dialog = SuggestDialog(choice, "demo", 40, 10, True)
    qtbot.addWidget(dialog)
    assert dialog.choice() == choice
    dialog.engines["onednn"].setChecked(True)
    assert dialog.choice().engines == ("x86", "onednn")
