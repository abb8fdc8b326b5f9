"""File ▸ Export quantized model…: a worker writes a folder that reloads and opens in the window."""

from __future__ import annotations

import json

import torch

from speechquant.core.export.loader import is_export_folder, load_quantized
from speechquant.gui.export_action import suggested_name
from speechquant.gui.worker import active_threads

from .helpers import fast_settings

RUN_TIMEOUT = 120_000
W2V = "encoder.wav2vec2.model"
LAYERS = W2V + ".encoder.layers"


def fixed_wave() -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    t = torch.arange(16000) / 16000
    return 0.2 * torch.sin(2 * torch.pi * 220 * t) + 0.02 * torch.randn(16000, generator=generator)


def test_export_writes_a_folder_that_reloads_and_opens(qtbot, window, tiny_data, tmp_path):
    fast_settings(window, tiny_data)  # limit 3 of 4 utterances, calib_n 1
    assert window.apply_preset("tutorial")  # static entries: calibrated on the Data settings
    plan_before = window.plan.to_dict()
    out = tmp_path / "exports" / "tiny-tutorial"
    stages: list[str] = []
    window.jobProgress.connect(lambda _d, _t, stage: stages.append(stage))
    with qtbot.waitSignal(window.exporter.exported, timeout=RUN_TIMEOUT) as done:
        assert window.exporter.export_to(out)
        assert window.job is not None and not window.run_panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    outcome = done.args[0]
    assert outcome.folder == out.resolve() and is_export_folder(out)
    assert outcome.calibration_ids == ["utt3"]  # outside the 3 evaluated utterances
    assert any(s.startswith("calibrating") for s in stages)
    assert any(s.startswith("exporting") for s in stages)
    assert outcome.disk_bytes > 0 and outcome.float_bytes > outcome.disk_bytes
    log = window.run_panel.log.toPlainText()
    assert f"to {out.resolve()}" in log and "on disk" in log and "smaller" in log
    assert window.plan.to_dict() == plan_before
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["calibration_ids"] == ["utt3"] and meta["plan_name"] == "tutorial"
    assert meta["metrics"] is None  # no run of this plan yet

    # the folder reloads offline and transcribes like the in-memory quantized model
    reloaded = load_quantized(out)
    wave = fixed_wave()
    assert reloaded.transcribe(wave) == outcome.model.transcribe(wave)
    assert torch.equal(reloaded.encode(wave), outcome.model.encode(wave))

    # opening it in the window shows the quantized classes; the export action stays usable
    with qtbot.waitSignal(window.modelLoaded, timeout=RUN_TIMEOUT):
        assert window.open_source(str(out))
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    tree = window.tree_model.tree
    assert tree[W2V + ".feature_extractor"].class_name == "StaticQuantWrapper"
    classes = {node.class_name for node in tree.nodes()}
    assert {"Quantize", "DeQuantize", "LinearPackedParams"} <= classes
    assert window.model.source == str(out) and window.model.plan.name == "tutorial"
    assert not window.exporter.export_to(tmp_path / "again")  # already quantized
    assert "already quantized" in window.run_panel.log.toPlainText()


def test_export_records_the_metrics_of_the_matching_run(qtbot, window, tiny_data, tmp_path):
    fast_settings(window, tiny_data)
    assert window.apply_preset("tutorial")
    with qtbot.waitSignal(window.runCompleted, timeout=RUN_TIMEOUT) as ran:
        window.run_benchmark()
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    run_id = ran.args[0].run_id
    out = tmp_path / "with-metrics"
    with qtbot.waitSignal(window.exporter.exported, timeout=RUN_TIMEOUT) as done:
        assert window.exporter.export_to(out)
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert done.args[0].metrics_run_id == run_id
    metrics = json.loads((out / "metadata.json").read_text())["metrics"]
    assert metrics["wer"] == ran.args[0].result["wer"] and "utterances" not in metrics
    assert f"metrics of run #{run_id}" in window.run_panel.log.toPlainText()


def test_a_failing_export_reports_and_keeps_the_app_usable(qtbot, window, tiny_data, tmp_path):
    fast_settings(window, tiny_data)
    window.apply_preset("all-dynamic")
    window.tree_model.set_entry(LAYERS + ".0", "bf16")
    plan_before = window.plan.to_dict()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("not an export")
    with (
        qtbot.waitSignal(window.jobFailed, timeout=RUN_TIMEOUT) as failed,
        qtbot.waitSignal(window.jobFinished, timeout=RUN_TIMEOUT),
    ):
        assert window.exporter.export_to(busy)
    assert "already exists" in failed.args[0] and "\n" not in failed.args[0]
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    assert window.plan.to_dict() == plan_before
    assert "ERROR" in window.run_panel.log.toPlainText()
    assert window.run_panel.run_button.isEnabled() and window.exporter.action.isEnabled()
    # usable: the same plan exports to a new folder
    with qtbot.waitSignal(window.exporter.exported, timeout=RUN_TIMEOUT):
        assert window.exporter.export_to(tmp_path / "fresh")
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert is_export_folder(tmp_path / "fresh") and not active_threads()


def test_export_refusals_start_no_job(qtbot, window, tmp_path):
    window.apply_preset("none")
    assert not window.exporter.export_to(tmp_path / "float")
    assert "quantizes nothing" in window.run_panel.log.toPlainText()
    window.apply_preset("tutorial")
    window.settings_panel.dataset.setText("")
    window.settings_panel.calib.setText("")
    with qtbot.waitSignal(window.jobFailed, timeout=RUN_TIMEOUT) as failed:
        assert window.exporter.export_to(tmp_path / "uncalibrated")
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert "calibration" in failed.args[0] and "Data settings" in failed.args[0]
    assert not (tmp_path / "uncalibrated").exists()


def test_export_action_is_in_the_file_menu_and_toolbar(qtbot, window):
    action = window.exporter.action
    file_menu = window.menuBar().actions()[0].menu()
    assert action in file_menu.actions() and action in window.model_bar.actions()
    assert action.isEnabled()  # a model is open
    assert suggested_name("replica:wav2vec2-tiny", "tutorial") == "wav2vec2-tiny-tutorial"
    assert suggested_name("/models/asr/", "my plan") == "asr-my-plan"
