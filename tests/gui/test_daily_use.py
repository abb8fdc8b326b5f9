"""Issue 14 items as a user meets them: Suggest defaults, readable results, stale state, export
labels, honest effective modes, messages, bad paths."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from speechquant.core.formatting import format_bytes
from speechquant.gui.jobs import RunOutcome, describe, ratio_text
from speechquant.gui.results_filter import ALL
from speechquant.gui.settings_panel import SettingsPanel
from speechquant.gui.tree_model import COL_EFFECTIVE, COL_SIZE, NOT_A_TARGET

from .test_window import LAYERS, fake_result


def defaults(window, data: str) -> None:
    """The app's own defaults: Eval limit 20, calibration 10, nothing else touched."""
    panel = window.settings_panel
    panel.dataset.setText(data)
    panel.limit.setValue(20)
    panel.calib_n.setValue(10)
    panel.calib.setText("")


@pytest.mark.realdata
def test_suggest_defaults_fit_the_shared_speech_set(qtbot, window, speech_dir):
    defaults(window, str(speech_dir / "manifest.csv"))
    dialog = window.analyzer.dialog()
    qtbot.addWidget(dialog)
    sizes = dialog.sizes()
    assert sizes is not None and sizes.problem() is None
    assert dialog.splits.text() == "74 utterances: 10 calibration · 20 search · 44 evaluation"
    assert dialog.buttons.buttons()[0].isEnabled()


def test_suggest_defaults_fit_the_demo_set_and_say_when_splits_do_not(qtbot, window, tiny_data):
    defaults(window, "demo")
    dialog = window.analyzer.dialog()
    qtbot.addWidget(dialog)
    assert dialog.splits.text() == "40 utterances: 10 calibration · 20 search · 10 evaluation"
    dialog.search_n.setValue(35)  # more than the set can give: said in the dialog, OK disabled
    assert "the search needs 35 for searching" in dialog.splits.text()
    assert "--" not in dialog.splits.text() and not dialog.buttons.buttons()[0].isEnabled()
    dialog.schemes["static"].setChecked(False)  # no static: no calibration is reserved
    assert dialog.splits.text() == "40 utterances: no calibration · 35 search · 5 evaluation"
    defaults(window, str(tiny_data))  # 4 utterances: the default search split shrinks to fit
    window.settings_panel.calib_n.setValue(1)
    small = window.analyzer.dialog()
    qtbot.addWidget(small)
    assert small.sizes().problem() is None and small.sizes().evaluation >= 1


def add(history, plan, wer, rtf, kind, data, n=2, group=None, machine=None):
    result = fake_result(
        "replica:wav2vec2-tiny", plan, wer, rtf, 1000 if plan else 4000, ["a", "b"]
    )
    result["n_utterances"] = n
    if machine:
        result["machine"] = {"cpu": {"model": machine}, "cores": 2, "key": machine}
        result["wer_ci"] = [wer - 2.0, wer + 3.0]
        paired = {"paired": True, "speedup": 2.0, "speedup_ci": [1.5, 2.5]}
        result["comparison"] = paired if plan else {}
    return history.add_run(result, kind=kind, group_id=group, settings={"data": data})


def test_results_filter_group_and_export(qtbot, window, history, tmp_path):
    base = add(
        history, None, 10.0, 0.4, "baseline", "/d/speech/manifest.csv", group="g", machine="EPYC"
    )
    fast = add(
        history, "fast", 12.0, 0.2, "compare", "/d/speech/manifest.csv", group="g", machine="EPYC"
    )
    good = add(
        history, "good", 10.5, 0.3, "compare", "/d/speech/manifest.csv", group="g", machine="EPYC"
    )
    other = add(history, "other", 11.0, 0.1, "compare", "demo", n=5)  # other data: its own front
    for i in range(6):
        add(history, f"unit-{i}", 30.0 + i, 0.3, "sensitivity", None, group="g")
    results = window.results
    results.refresh()
    shown = {row.run.id for row in results.model.rows}
    assert shown == {base, fast, good, other}  # sensitivity rows hidden by default
    assert "6 hidden by the filters" in results.count.text()
    chart = results.scatter
    assert set(chart.front_ids) == {base, fast, good, other}
    assert chart.front_groups == 1  # one line: the demo run is alone on its data
    assert chart.error_count == 3 and results.bars.speedup.error_count == 2
    low, high = chart.plot.getPlotItem().viewRange()[1]
    assert chart.error_span == (8.0, 15.0) and low <= 8.0 and high >= 15.0  # whole bars shown
    assert [results.subset.itemText(i) for i in range(results.subset.count())][1:] == [
        "demo · 5 utts",
        "speech/manifest.csv · 2 utts",
    ]
    results.subset.setCurrentIndex(results.subset.findData("demo · 5 utts"))
    assert [row.run.id for row in results.model.rows] == [other]
    results.subset.setCurrentIndex(0)
    results.machine.setCurrentIndex(results.machine.findData("EPYC · 2 cores"))
    assert {row.run.id for row in results.model.rows} == {base, fast, good}
    results.machine.setCurrentIndex(0)
    results.kind.setCurrentIndex(results.kind.findData(ALL))
    assert results.model.rowCount() == 10
    results.search.setText("unit-3")
    assert results.model.rowCount() == 1
    results.search.setText("")
    results.kind.setCurrentIndex(0)
    csv_path = tmp_path / "runs.csv"
    assert results.export_csv(csv_path)
    lines = csv_path.read_text().splitlines()
    assert (
        lines[0].startswith("id,time,plan,name,tags,schemes,WER %,WER 95 % CI") and len(lines) == 5
    )
    assert any("8.0–13.0" in line and "EPYC · 2 cores" in line for line in lines)
    for name in ("chart.png", "chart.svg"):
        assert results.export_chart(0, tmp_path / name)
        assert (tmp_path / name).stat().st_size > 1000
    assert not results.export_chart(0, tmp_path / "chart.jpg")


def test_opening_another_model_clears_the_comparison_and_charts(qtbot, window, history):
    first = add(history, None, 10.0, 0.4, "baseline", "demo", group="g")
    second = add(history, "fast", 12.0, 0.2, "compare", "demo", group="g")
    window.results.refresh()
    window.results.compare(first, second)
    assert window.results.comparison_box.isVisibleTo(window.results)
    other = window.model.__class__(**{**window.model.__dict__, "source": "elsewhere:model"})
    window.set_model(other)
    assert not window.results.comparison_box.isVisibleTo(window.results)
    assert window.results.model.rowCount() == 0 and window.results.scatter.run_ids == []
    legend = window.results.scatter.legend
    assert not legend.items  # no entry for anything not drawn
    x_range = window.results.scatter.plot.getPlotItem().viewRange()[0]
    assert x_range == [0.0, 1.0]


def test_effective_mode_shows_a_scheme_only_where_it_acts(window):
    model = window.tree_model
    assert model.set_entry(LAYERS + ".0", "dynamic")
    layer = LAYERS + ".0"
    tree = model.tree
    kinds = {node.class_name: node.path for node in tree[layer].walk() if not node.children}
    linear = next(path for cls, path in kinds.items() if cls == "Linear")
    norm = next(path for cls, path in kinds.items() if cls == "LayerNorm")
    text = lambda path: model.index_of(path, COL_EFFECTIVE).data()  # noqa: E731
    assert text(linear) == "dynamic" and text(layer) == "dynamic"
    assert text(norm) == NOT_A_TARGET
    assert text("encoder") == "none"
    tip = model.index_of(norm, COL_EFFECTIVE).data(3)  # ToolTipRole
    assert "converts nothing" in tip


def test_messages_say_slower_and_sizes_agree(window):
    assert ratio_text(0.36, "faster", "slower") == "2.78× slower"
    assert ratio_text(2.0, "faster", "slower") == "2.00× faster"
    base = fake_result("m", None, 10.0, 0.2, 2_000_000, ["a", "b"])
    slow = fake_result("m", "p", 11.0, 0.5, 1_000_000, ["a", "b"])
    unpaired = describe(RunOutcome("m", base, 1, True, dict(slow), 2))
    assert "not timed together" in unpaired and "slower" not in unpaired  # never RTF / RTF
    slow["comparison"] = {"paired": True, "speedup": 0.4, "speedup_ci": [0.38, 0.42]}
    line = describe(RunOutcome("m", base, 1, False, slow, 2))
    assert "2.50× slower" in line and "faster" not in line and "2.0 MB" in line
    tree = window.tree_model.tree
    shown = window.tree_model.index_of("encoder", COL_SIZE).data()
    assert shown == format_bytes(tree["encoder"].total_bytes)  # the unit the results use
    assert f"size {format_bytes(tree.root.total_bytes)} →" in window.plan_panel.summary.text()
    assert format_bytes(151_110_000) == "151.1 MB" and format_bytes(491_600) == "491.6 kB"


def test_a_bad_dataset_path_is_flagged_and_never_saved(qtbot, tmp_path):
    store = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    panel = SettingsPanel(store)
    qtbot.addWidget(panel)
    said: list[str] = []
    panel.message.connect(lambda text, level: said.append(text))
    panel.dataset.setText(str(tmp_path / "nowhere"))
    panel.dataset.edit.editingFinished.emit()
    assert panel.dataset.problem and "does not exist" in panel.dataset.problem
    assert said and "nowhere" in said[0] and "--" not in said[0]
    panel.save()
    assert store.value("settings/dataset") in (None, "demo")
    store.setValue("settings/dataset", str(tmp_path / "gone"))  # saved by an older version
    again = SettingsPanel(store)
    qtbot.addWidget(again)
    assert again.dataset.text() == "demo" and again.dataset.problem is None


def test_a_failed_load_does_not_linger_in_the_model_field(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.jobFinished, timeout=60_000):
        window.open_source(str(tmp_path / "nowhere"))
    assert window.model_bar.source_box.currentText() == window.model.source


def test_plan_edits_undo_redo_and_a_preset_asks_first(window):
    editor = window.plan_editor
    assert window.tree_model.set_entry(LAYERS, "dynamic")
    assert window.plan.entries == {LAYERS: "dynamic"}
    assert editor.undo() and window.plan.entries == {}
    assert editor.redo() and window.plan.entries == {LAYERS: "dynamic"}
    editor.confirm = True
    asked: list[str] = []
    editor.ask = lambda question: asked.append(question) or False
    assert not window.apply_preset("all-dynamic")  # the user said no: edits kept
    assert asked and "Discard your edits?" in asked[0]
    assert window.plan.entries == {LAYERS: "dynamic"}
    editor.ask = lambda question: True
    assert window.apply_preset("all-dynamic") and window.plan.name == "all-dynamic"
    assert editor.undo() and window.plan.entries == {LAYERS: "dynamic"}
