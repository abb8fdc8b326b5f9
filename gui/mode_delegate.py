"""The combo box that edits a module's scheme: only schemes that apply are enabled."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from .tree_model import ChoicesRole

INHERIT_LABEL = "(inherit)"
SchemeRole = Qt.ItemDataRole.UserRole + 10

Index = QModelIndex | QPersistentModelIndex


def fill_combo(combo: QComboBox, choices: list[tuple[str, str, bool, str, str]]) -> None:
    """``(inherit)`` then each registered scheme; inapplicable ones disabled, reason as tooltip.

    An applicable scheme's tooltip is its hardware advice for this CPU where it has one."""
    combo.clear()
    combo.addItem(INHERIT_LABEL, "")
    combo.setItemData(
        0, "No entry: take the scheme of the nearest ancestor", Qt.ItemDataRole.ToolTipRole
    )
    items = combo.model()
    assert isinstance(items, QStandardItemModel)
    for name, label, applies, reason, advice in choices:
        combo.addItem(label, name)
        row = combo.count() - 1
        item = items.item(row)
        if not applies:
            item.setEnabled(False)
            item.setToolTip(f"{name} does not apply here: {reason}")
        else:
            item.setToolTip(advice or name)


class ModeDelegate(QStyledItemDelegate):
    """Edits the ``mode`` column of :class:`ModuleTreeModel` (through any proxy)."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Index) -> QWidget:
        combo = QComboBox(parent)
        combo.setObjectName("modeEditor")
        fill_combo(combo, index.data(ChoicesRole) or [])
        combo.activated.connect(lambda _row, c=combo: self._commit(c))
        return combo

    def _commit(self, combo: QComboBox) -> None:
        self.commitData.emit(combo)
        self.closeEditor.emit(combo, QStyledItemDelegate.EndEditHint.NoHint)

    def setEditorData(self, editor: QWidget, index: Index) -> None:
        assert isinstance(editor, QComboBox)
        current = index.data(Qt.ItemDataRole.EditRole) or ""
        row = editor.findData(current)
        editor.setCurrentIndex(max(row, 0))

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: Index) -> None:
        assert isinstance(editor, QComboBox)
        model.setData(index, editor.currentData() or "", Qt.ItemDataRole.EditRole)

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: Index
    ) -> None:
        editor.setGeometry(option.rect)

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> Any:
        hint = super().sizeHint(option, index)
        hint.setHeight(max(hint.height(), 22))
        return hint
