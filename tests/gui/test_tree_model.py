"""The module tree model, its filter proxy and the mode delegate."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QComboBox, QStyleOptionViewItem, QTreeView

from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree
from speechquant.gui.mode_delegate import INHERIT_LABEL, ModeDelegate
from speechquant.gui.tree_model import (
    COL_EFFECTIVE,
    COL_MODE,
    ChoicesRole,
    InheritedRole,
    ModuleFilterProxy,
    ModuleTreeModel,
    NodeRole,
)

LAYERS = "encoder.wav2vec2.model.encoder.layers"
FEATURES = "encoder.wav2vec2.model.feature_extractor"


@pytest.fixture(scope="module")
def tree(tiny_model):
    return build_tree(tiny_model.mods)


@pytest.fixture
def model(qapp, tree):
    model = ModuleTreeModel()
    model.set_tree(tree)
    return model


def effective(model: ModuleTreeModel, path: str) -> tuple[str, bool]:
    index = model.index_of(path, COL_EFFECTIVE)
    return index.data(), bool(index.data(InheritedRole))


def test_qmodeltester_accepts_the_tree_model(qtmodeltester, model):
    qtmodeltester.check(model)


def test_qmodeltester_accepts_the_model_with_a_plan_and_a_filter(qtmodeltester, model, tree):
    model.set_plan(make_preset("tutorial", tree))
    proxy = ModuleFilterProxy()
    proxy.setSourceModel(model)
    proxy.setFilterFixedString("feed_forward")
    qtmodeltester.check(proxy)


def test_rows_cover_the_tree(model, tree):
    top = [model.index(r, 0).data(NodeRole) for r in range(model.rowCount())]
    assert top == tree.root.children
    layers = model.index_of(LAYERS)
    assert model.rowCount(layers) == len(tree[LAYERS].children)
    assert model.parent(model.index(0, 0, layers)) == layers
    assert model.index_of(LAYERS, 2).data() == f"{tree[LAYERS].total_params:,}"
    assert model.index_of(LAYERS, 1).data() == "ModuleList"


def test_set_data_sets_the_plan_and_the_inherited_modes(qtbot, model):
    index = model.index_of(LAYERS, COL_MODE)
    assert effective(model, LAYERS + ".0.attention.k_proj") == ("none", True)
    with qtbot.waitSignal(model.dataChanged), qtbot.waitSignal(model.planChanged) as changed:
        assert model.setData(index, "dynamic", Qt.ItemDataRole.EditRole)
    assert changed.args[0].entries == {LAYERS: "dynamic"}
    assert model.plan.entries == {LAYERS: "dynamic"}
    assert index.data() == "dynamic"
    assert effective(model, LAYERS) == ("dynamic", False)
    assert effective(model, LAYERS + ".0.attention.k_proj") == ("dynamic", True)
    font = model.index_of(LAYERS + ".0", COL_EFFECTIVE).data(Qt.ItemDataRole.FontRole)
    assert font.italic()
    assert not model.index_of(LAYERS, COL_EFFECTIVE).data(Qt.ItemDataRole.FontRole).italic()
    assert "inherited from " + LAYERS in model.index_of(LAYERS + ".0", COL_EFFECTIVE).data(
        Qt.ItemDataRole.ToolTipRole
    )
    # an override below, then clearing it inherits again
    child = model.index_of(LAYERS + ".1", COL_MODE)
    assert model.setData(child, "bf16")
    assert effective(model, LAYERS + ".1.feed_forward") == ("bf16", True)
    assert model.setData(child, "")
    assert effective(model, LAYERS + ".1.feed_forward") == ("dynamic", True)
    assert model.plan.entries == {LAYERS: "dynamic"}


def test_data_changed_covers_the_whole_subtree(qtbot, model, tree):
    seen: set[str] = set()

    def record(top_left, bottom_right, _roles):
        parent = top_left.parent()
        for row in range(top_left.row(), bottom_right.row() + 1):
            seen.add(model.index(row, 0, parent).data(NodeRole).path)

    model.dataChanged.connect(record)
    model.set_entry(LAYERS, "dynamic")
    assert {node.path for node in tree[LAYERS].walk()} <= seen


def test_an_inapplicable_scheme_is_refused_and_the_plan_kept(qtbot, model):
    model.set_entry(LAYERS, "dynamic")
    before = dict(model.plan.entries)
    attention = model.index_of(LAYERS + ".0.attention", COL_MODE)
    with qtbot.waitSignal(model.editRejected) as rejected:
        assert not model.setData(attention, "static")
    assert "attention" in rejected.args[0]
    assert model.plan.entries == before


def test_a_wrapping_scheme_absorbs_the_entries_inside_it(qtbot, model):
    model.set_entry(FEATURES + ".conv_layers.0", "static")
    with qtbot.waitSignal(model.entriesDropped) as dropped:
        assert model.set_entry(FEATURES, "bf16")
    assert dropped.args == [FEATURES, [FEATURES + ".conv_layers.0"]]
    assert model.plan.entries == {FEATURES: "bf16"}
    with qtbot.waitSignal(model.editRejected):
        assert not model.set_entry(FEATURES + ".conv_layers.1", "none")


def test_set_plan_keeps_rows_and_updates_modes(model, tree):
    rows = model.rowCount()
    model.set_plan(make_preset("all-dynamic", tree))
    assert model.rowCount() == rows
    assert effective(model, LAYERS + ".0") == ("dynamic", True)
    model.set_plan(Plan())
    assert effective(model, LAYERS + ".0") == ("none", True)


def test_editing_a_preset_makes_it_custom(model, tree):
    model.set_plan(make_preset("all-dynamic", tree))
    model.set_entry(FEATURES, "static")
    assert model.plan.name == "custom"


def test_filter_keeps_matches_and_their_ancestors(model):
    proxy = ModuleFilterProxy()
    proxy.setSourceModel(model)
    proxy.setFilterFixedString("FEED_FORWARD")
    view = QTreeView()
    view.setModel(proxy)
    view.expandAll()
    paths = []

    def walk(parent: QModelIndex) -> None:
        for row in range(proxy.rowCount(parent)):
            index = proxy.index(row, 0, parent)
            paths.append(index.data(NodeRole).path)
            walk(index)

    walk(QModelIndex())
    assert "encoder" in paths and LAYERS in paths
    assert LAYERS + ".0.feed_forward" in paths
    assert LAYERS + ".0.attention" not in paths
    proxy.setFilterFixedString("LayerNorm")
    assert proxy.rowCount() >= 1


def test_delegate_offers_only_applicable_schemes(qtbot, model):
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(model)
    delegate = ModeDelegate(view)
    index = model.index_of(LAYERS + ".0.attention", COL_MODE)
    editor = delegate.createEditor(view.viewport(), QStyleOptionViewItem(), index)
    assert isinstance(editor, QComboBox)
    names = [editor.itemData(i) for i in range(editor.count())]
    assert editor.itemText(0) == INHERIT_LABEL
    assert names[1:] == [c[0] for c in index.data(ChoicesRole)]
    items = editor.model()
    static = names.index("static")
    assert not items.item(static).isEnabled()
    assert "attention" in items.item(static).toolTip()
    dynamic = names.index("dynamic")
    assert items.item(dynamic).isEnabled()
    delegate.setEditorData(editor, index)
    assert editor.currentIndex() == 0
    editor.setCurrentIndex(dynamic)
    delegate.setModelData(editor, model, index)
    assert model.plan.entries == {LAYERS + ".0.attention": "dynamic"}


def test_combo_tooltips_carry_the_hardware_advice(qtbot, model):
    model.set_advice({"bf16": "bf16: emulated on this CPU, expect it slower than float32"})
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(model)
    index = model.index_of(LAYERS, COL_MODE)
    editor = ModeDelegate(view).createEditor(view.viewport(), QStyleOptionViewItem(), index)
    names = [editor.itemData(i) for i in range(editor.count())]
    items = editor.model()
    assert items.item(names.index("bf16")).toolTip().startswith("bf16: emulated on this CPU")
    assert items.item(names.index("dynamic")).toolTip() == "dynamic"
    assert "note: bf16: emulated" in index.data(Qt.ItemDataRole.ToolTipRole)
