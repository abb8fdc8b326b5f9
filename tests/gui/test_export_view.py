"""An opened export shows what it is: quantized kinds in the tree, a module panel, its stored
measurement, and runs labelled with its plan."""

from __future__ import annotations

import pytest

from speechquant.core.export.writer import export_quantized
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree
from speechquant.gui.tree_model import COL_TYPE

from .helpers import fast_settings

RUN_TIMEOUT = 120_000
METRICS = {
    "wer": 12.5,
    "wer_ci": [10.0, 15.0],
    "rtf": 0.25,
    "n_utterances": 3,
    "model_bytes": 123_000,
    "comparison": {"delta_wer": 0.5, "delta_wer_ci": [-1.0, 2.0], "speedup": 1.8},
    "utterances": [{"id": "u1"}],
}


@pytest.fixture
def dynamic_export(tiny_model, tmp_path):
    plan = make_preset("all-dynamic", build_tree(tiny_model.mods))
    return export_quantized(tiny_model, plan, tmp_path / "dyn-export", metrics=METRICS)


def _open(qtbot, window, folder) -> None:
    with qtbot.waitSignal(window.modelLoaded, timeout=RUN_TIMEOUT):
        assert window.open_source(str(folder))
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)


def test_an_export_shows_its_quantized_modules_and_stored_metrics(qtbot, window, dynamic_export):
    _open(qtbot, window, dynamic_export)
    model = window.tree_model
    tree = model.tree
    dynamic = [n for n in tree.nodes() if n.kind == "dynamic int8 Linear"]
    assert dynamic, "the export's Linear layers must show as dynamic int8"
    node = dynamic[0]
    index = model.index_of(node.path, COL_TYPE)
    assert index.data() == "dynamic int8 Linear"
    assert "qint8" in index.data(0x0003)  # ToolTipRole: the details lines

    panel = window.plan_panel
    assert "Select a module" in panel.details.text()
    view_index = panel.proxy.mapFromSource(model.index_of(node.path))
    panel.view.setCurrentIndex(view_index)
    text = panel.details.text()
    weight = node.details.weight
    shape = "×".join(str(n) for n in weight.shape)
    assert "dynamic int8 Linear" in text and "torch.ao.nn.quantized.dynamic" in text
    assert "dynamic (in the loaded model)" in text and "(float)" not in text
    assert f"qint8 [{shape}]" in text and "packed" in text and "scale" in text

    info = panel.export_info
    assert info.isVisibleTo(panel)
    shown = info.text()
    assert "Export of plan all-dynamic" in shown and "replica:wav2vec2-tiny" in shown
    assert "WER 12.50 % [95 %: 10.0–15.0]" in shown and "ΔWER +0.50" in shown
    assert "speed-up 1.80×" in shown and "on 3 utterances" in shown
    assert "export of plan all-dynamic" in window.model_label.text()


def test_a_float_model_has_no_export_info(qtbot, window):
    assert not window.plan_panel.export_info.isVisibleTo(window.plan_panel)
    model = window.tree_model
    first = next(iter(model.tree.nodes()))
    assert model.index_of(first.path, COL_TYPE).data() == first.class_name


def test_runs_on_an_export_carry_its_plan_name(qtbot, window, dynamic_export, tiny_data):
    _open(qtbot, window, dynamic_export)
    fast_settings(window, tiny_data, limit=2)
    with qtbot.waitSignal(window.runCompleted, timeout=RUN_TIMEOUT) as done:
        assert window.run_benchmark()
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    outcome = done.args[0]
    log = window.run_panel.log.toPlainText()
    assert f"#{outcome.baseline_id} all-dynamic" in log
    assert f"#{outcome.baseline_id} float32" not in log
    rows = window.results.model.rows
    assert [r.run.plan_name for r in rows] == ["all-dynamic"]
    assert "all-dynamic" in window.results.model.index(0, 2).data()
    assert f"#{outcome.baseline_id} all-dynamic" in window.utterances.first.currentText()
