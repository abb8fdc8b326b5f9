"""The Plan tab's left side: filter, expand/collapse, the module tree and the live plan summary."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QSplitter,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.export.info import ExportInfo
from speechquant.core.formatting import format_bytes
from speechquant.core.quantization.estimate import estimate_plan, summary_text
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import PRESETS, preset_names
from speechquant.core.quantization.settings import QuantSettings

from .mode_delegate import ModeDelegate
from .module_panel import ModulePanel
from .tree_model import COL_MODE, COL_NAME, ModuleFilterProxy, ModuleTreeModel, NodeRole


class PlanPanel(QWidget):
    """Owns the tree model, its filter proxy and view; the window wires the plan actions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ModuleTreeModel(self)
        self.proxy = ModuleFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.view = QTreeView()
        self.view.setObjectName("moduleTree")
        self.view.setModel(self.proxy)
        self.view.setItemDelegateForColumn(COL_MODE, ModeDelegate(self.view))
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.SelectedClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.view.setAlternatingRowColors(True)
        self.view.setUniformRowHeights(True)
        header = self.view.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.resizeSection(COL_NAME, 280)
        for column, width in ((1, 280), (2, 80), (3, 80), (4, 90), (5, 110)):
            header.resizeSection(column, width)

        self.filter = QLineEdit()
        self.filter.setObjectName("treeFilter")
        self.filter.setPlaceholderText("Filter modules by path or type…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.set_filter)
        self.expand_action = QAction("Expand all", self)
        self.expand_action.triggered.connect(self.view.expandAll)
        self.collapse_action = QAction("Collapse all", self)
        self.collapse_action.triggered.connect(self.view.collapseAll)
        self.preset_menu = QMenu("Presets", self)
        self.preset_actions: dict[str, QAction] = {}
        for name in preset_names():
            action = self.preset_menu.addAction(name)
            action.setToolTip(PRESETS[name].description)
            action.setStatusTip(PRESETS[name].description)
            self.preset_actions[name] = action
        self.preset_menu.setToolTipsVisible(True)
        self.load_action = QAction("Load plan…", self)
        self.save_action = QAction("Save plan…", self)
        self.plan_name = QLineEdit()
        self.plan_name.setObjectName("planName")
        self.plan_name.setPlaceholderText("plan name")
        self.plan_name.setMaximumWidth(160)
        self.plan_name.setToolTip("Shown in the results table and charts")
        self.plan_name.editingFinished.connect(self._rename)

        bar = QHBoxLayout()
        bar.addWidget(self.filter, 1)
        for action in (self.expand_action, self.collapse_action):
            bar.addWidget(self._button(action))
        presets = QToolButton()
        presets.setText("Presets")
        presets.setMenu(self.preset_menu)
        presets.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(presets)
        bar.addWidget(self._button(self.load_action))
        bar.addWidget(self._button(self.save_action))
        bar.addWidget(QLabel("Plan:"))
        bar.addWidget(self.plan_name)
        self.summary = QLabel("Open a model to see its modules.")
        self.summary.setObjectName("planSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.speed_warning = QLabel("")
        self.speed_warning.setObjectName("planSpeedWarning")
        self.speed_warning.setWordWrap(True)
        self.speed_warning.setStyleSheet("color: #a35200")
        self.speed_warning.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.speed_warning.setVisible(False)
        self.export_info = QLabel("")
        self.export_info.setObjectName("exportInfo")
        self.export_info.setWordWrap(True)
        self.export_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_info.setVisible(False)
        self.details = ModulePanel(self.model)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.view)
        split.addWidget(self.details)
        split.setStretchFactor(0, 1)
        split.setSizes([600, 180])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.export_info)
        layout.addWidget(split, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.speed_warning)
        self._quant: QuantSettings | None = None
        self._export: ExportInfo | None = None
        self.model.planChanged.connect(self._plan_changed)
        self.model.modelReset.connect(lambda: self.details.show_node(None))
        self.view.selectionModel().currentChanged.connect(self._current_changed)

    @staticmethod
    def _button(action: QAction) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        return button

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.details.show_node(current.data(NodeRole) if current.isValid() else None)

    def set_export_info(self, info: ExportInfo | None) -> None:
        """What an opened export says about itself (hidden for other models)."""
        self.export_info.setText("\n".join(info.lines()) if info is not None else "")
        self.export_info.setVisible(info is not None)
        self._export = info
        self.update_summary()

    def set_filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        if text.strip():
            self.view.expandAll()

    def _rename(self) -> None:
        name = self.plan_name.text().strip()
        if name and name != self.model.plan.name:
            self.model.rename_plan(name)

    def set_quant_settings(self, settings: QuantSettings) -> None:
        """The settings the estimate uses (the settings panel's, which the run will use)."""
        self._quant = settings
        self.update_summary()

    def _plan_changed(self, plan: Plan) -> None:
        if self.plan_name.text() != plan.name:
            self.plan_name.setText(plan.name)
        self.update_summary()

    def update_summary(self) -> None:
        tree = self.model.tree
        plan = self.model.plan
        if self._quant is not None:
            plan = Plan(entries=plan.entries, settings=self._quant, name=plan.name)
        warnings = self.model.speed_warnings(plan) if tree is not None else []
        self.speed_warning.setText("\n".join(f"⚠ {text}" for text in warnings))
        self.speed_warning.setVisible(bool(warnings))
        if tree is None:
            self.summary.setText("Open a model to see its modules.")
            return
        if self._export is not None and not plan.entries:  # not a float model: say what it is
            self.summary.setText(
                f"already quantized: an export of plan {self._export.plan_name}, measured as "
                f"it is by Run benchmark · size {format_bytes(tree.root.total_bytes)}"
            )
            return
        self.summary.setText(summary_text(estimate_plan(tree, plan)))

    def show_tree(self) -> None:
        """Default view after a model loads: the top levels open."""
        self.view.expandToDepth(2)
