"""A plan naming a scheme that is slow on this CPU says so under the plan summary and in the log."""

from __future__ import annotations

from types import SimpleNamespace

from speechquant.core.quantization.validation import EngineSpeed
from speechquant.gui import tree_model

SLOW = "bf16: emulated on this CPU (no AVX512-BF16 or AMX), expect it slower than float32"


def test_the_bf16_preset_warns_where_bf16_is_emulated(qtbot, window):
    window.tree_model.set_advice({"bf16": SLOW})
    warning = window.plan_panel.speed_warning
    assert window.apply_preset("bf16")
    assert not warning.isHidden() and warning.text() == f"⚠ {SLOW}"
    assert f"warning {SLOW}" in window.run_panel.log.toPlainText()
    assert window.apply_preset("all-dynamic")  # no advice for dynamic: the line goes
    assert warning.isHidden() and warning.text() == ""


def test_no_warning_where_the_cpu_runs_the_scheme_natively(qtbot, window):
    window.tree_model.set_advice({})
    assert window.apply_preset("bf16")
    assert window.plan_panel.speed_warning.isHidden()
    assert "warning" not in window.run_panel.log.toPlainText()


def test_the_advice_reads_this_machines_measured_speeds(monkeypatch):
    report = SimpleNamespace(clear_speedups=lambda: {"bf16": 0.25})
    monkeypatch.setattr(tree_model, "cached_report", lambda: report)
    assert "4.0x slower than float32 here (measured" in tree_model.machine_advice()["bf16"]
    monkeypatch.setattr(tree_model, "cached_report", lambda: None)
    model = tree_model.ModuleTreeModel()
    assert model.advice == tree_model.scheme_advice(tree_model.this_cpu())


def test_the_plan_summary_names_a_clearly_faster_engine_and_follows_the_engine_setting(
    qtbot, window
):
    window.tree_model.set_advice({})
    window.tree_model.set_engine_speeds(
        [EngineSpeed("dynamic", "x86", 0.85, 0.81, 1.06),
         EngineSpeed("dynamic", "onednn", 1.62, 1.49, 1.90)]
    )  # fmt: skip
    warning = window.plan_panel.speed_warning
    window.settings_panel.engine.setCurrentText("x86")
    assert window.apply_preset("all-dynamic")
    assert not warning.isHidden()
    assert "dynamic: engine onednn is faster here than the plan's x86" in warning.text()
    assert "engine onednn is faster" in window.run_panel.log.toPlainText()
    window.settings_panel.engine.setCurrentText("onednn")
    assert warning.isHidden() and warning.text() == ""
