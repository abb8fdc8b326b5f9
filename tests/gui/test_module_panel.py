"""The Plan tab's module panel says which scheme the plan gives the selected module and where
it comes from, and "none (float)" only where nothing covers it."""

from __future__ import annotations

LAYERS = "encoder.wav2vec2.model.encoder.layers"
K_PROJ = LAYERS + ".0.attention.k_proj"
NORM = LAYERS + ".0.layer_norm"


def _select(window, path: str) -> str:
    panel = window.plan_panel
    panel.view.setCurrentIndex(panel.proxy.mapFromSource(window.tree_model.index_of(path)))
    assert panel.details.title() == f"Module {path}"
    return panel.details.text()


def test_a_module_without_an_entry_names_the_scheme_it_inherits_and_from_where(window):
    model, details = window.tree_model, window.plan_panel.details
    assert "none (float)" in _select(window, K_PROJ)
    assert model.set_entry(LAYERS, "dynamic")
    text = details.text()
    assert f"dynamic (from {LAYERS})" in text
    assert "(float" not in text
    assert model.set_entry(LAYERS + ".0", "none")
    assert f"none (float, from {LAYERS}.0)" in details.text()
    assert model.set_entry(K_PROJ, "dynamic")
    assert "dynamic (set here)" in details.text()
    assert model.set_entry(K_PROJ, None)
    assert f"none (float, from {LAYERS}.0)" in details.text()
    assert model.set_entry(LAYERS + ".0", None)
    assert model.set_entry(K_PROJ, "none")
    assert "none (float, set here)" in details.text()
    assert model.set_entry(K_PROJ, None)
    assert f"dynamic (from {LAYERS})" in details.text()
    assert model.set_entry(LAYERS, None)
    assert "none (float)" in details.text()


def test_a_module_the_inherited_scheme_leaves_float_says_so(window):
    assert window.tree_model.set_entry(LAYERS, "dynamic")
    text = _select(window, NORM)
    node = window.tree_model.tree[NORM]
    assert f"float: dynamic (from {LAYERS}) converts nothing in this {node.class_name}" in text


def test_a_loaded_plan_shows_in_the_panel_of_the_selected_module(window):
    from speechquant.core.quantization.presets import make_preset

    _select(window, K_PROJ)
    plan = make_preset("all-dynamic", window.tree_model.tree)
    scheme, origin = plan.effective(K_PROJ)
    assert scheme == "dynamic" and origin is not None
    window.tree_model.set_plan(plan)
    where = "set here" if origin == K_PROJ else f"from {origin}"
    assert f"dynamic ({where})" in window.plan_panel.details.text()
