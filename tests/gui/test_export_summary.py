"""An opened export is not called a float baseline: the plan summary says it is quantized."""

from __future__ import annotations

from speechquant.core.export.info import ExportInfo
from speechquant.core.quantization.tree import build_tree
from speechquant.gui.plan_panel import PlanPanel

EXPORT = ExportInfo(
    folder="/exports/tiny-all-dynamic", plan_name="all-dynamic", source="replica:wav2vec2-tiny",
    created_at="2026-12-01T00:00:00+00:00", engine="x86", scheme_summary={"dynamic": 1},
    calibration_ids=(), state_bytes=1000, load_warnings=(), metrics=None,
)  # fmt: skip


def test_the_summary_of_an_export_says_it_is_already_quantized(qtbot, tiny_model):
    panel = PlanPanel()
    qtbot.addWidget(panel)
    panel.model.set_tree(build_tree(tiny_model.mods))
    assert "float baseline" in panel.summary.text()  # a float model with an empty plan
    panel.set_export_info(EXPORT)
    text = panel.summary.text()
    assert text.startswith("already quantized: an export of plan all-dynamic")
    assert "float baseline" not in text
    panel.set_export_info(None)  # a float model opened after it
    assert "float baseline" in panel.summary.text()
