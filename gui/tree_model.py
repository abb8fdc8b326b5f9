"""The module tree as a Qt item model, with the plan's explicit and effective scheme per module."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont

from speechquant.core.errors import PlanError
from speechquant.core.evaluation.doctor import cached_report
from speechquant.core.formatting import format_bytes
from speechquant.core.machine import this_cpu
from speechquant.core.quantization.estimate import acting_paths
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.plan_edit import with_entry
from speechquant.core.quantization.schemes import get_scheme, scheme_advice, scheme_names
from speechquant.core.quantization.tree import ModuleNode, ModuleTree
from speechquant.core.quantization.validation import EngineSpeed, engine_warnings, validate_plan

COLUMNS = ("module", "type", "params", "size", "mode", "effective mode")
COL_NAME, COL_TYPE, COL_PARAMS, COL_SIZE, COL_MODE, COL_EFFECTIVE = range(len(COLUMNS))
NodeRole = Qt.ItemDataRole.UserRole + 1
"""The :class:`ModuleNode` behind an index."""
SortRole = Qt.ItemDataRole.UserRole + 2
"""A sortable value (numbers for params and size)."""
ChoicesRole = Qt.ItemDataRole.UserRole + 3
"""For the mode column: ``[(scheme, label, applies, reason, advice), ...]`` from core's registry
(``advice``: the scheme's warning for this CPU, or "")."""
InheritedRole = Qt.ItemDataRole.UserRole + 4
"""For the effective column: True when the scheme comes from an ancestor (or the default)."""

INHERITED_COLOR = QColor("#7a7a7a")
SCHEME_COLORS = {"dynamic": "#1f5fae", "static": "#207a3c", "bf16": "#a35200"}
NOT_A_TARGET = "float (not a target)"

Index = QModelIndex | QPersistentModelIndex
NO_PARENT = QModelIndex()


def machine_advice() -> dict[str, str]:
    """Per-scheme speed warnings for this CPU, from this machine's doctor figures where they
    are clear (as the CLI's), else from its features."""
    report = cached_report()
    return scheme_advice(this_cpu(), report.clear_speedups() if report is not None else None)


def machine_engine_speeds() -> list[EngineSpeed]:
    """This machine's doctor figures per scheme and engine, for the engine warnings."""
    report = cached_report()
    return report.engine_speeds() if report is not None else []


class ModuleTreeModel(QAbstractItemModel):
    """Rows are :class:`ModuleNode` s below the tree's root; the ``mode`` column edits the plan."""

    planChanged = Signal(object)
    """The new :class:`Plan` after an edit or :meth:`set_plan`."""
    editRejected = Signal(str)
    """A one-line reason why an edit was refused (the plan is unchanged)."""
    entriesDropped = Signal(str, list)
    """(path, inner entries removed because ``path`` became a wrapping block)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._tree: ModuleTree | None = None
        self._plan = Plan()
        self._rows: dict[int, int] = {}
        self._highlights: dict[str, tuple[QColor, str]] = {}
        self._advice: dict[str, str] = machine_advice()
        self._engine_speeds: list[EngineSpeed] = machine_engine_speeds()
        self._acting: set[str] = set()

    def _recompute(self) -> None:
        self._acting = acting_paths(self._tree, self._plan) if self._tree is not None else set()

    def converts(self, path: str) -> bool:
        """Whether the plan's effective scheme converts something at ``path``."""
        return path in self._acting

    def effective_text(self, path: str) -> str:
        """The effective column: the scheme where it converts something, else float."""
        scheme, _ = self._plan.effective(path)
        if scheme == "none" or self.converts(path):
            return scheme
        return NOT_A_TARGET

    # --- the data behind the model ---------------------------------------------------------
    @property
    def tree(self) -> ModuleTree | None:
        return self._tree

    @property
    def plan(self) -> Plan:
        return self._plan

    def set_tree(self, tree: ModuleTree | None, plan: Plan | None = None) -> None:
        self.beginResetModel()
        self._tree = tree
        self._plan = plan or Plan()
        self._rows = {}
        self._highlights = {}
        if tree is not None:
            for node in tree.root.walk():
                for row, child in enumerate(node.children):
                    self._rows[id(child)] = row
        self._recompute()
        self.endResetModel()
        self.planChanged.emit(self._plan)

    def set_plan(self, plan: Plan) -> None:
        """Replace the plan (validated against the tree); the view keeps its expansion state."""
        if self._tree is not None:
            validate_plan(plan, self._tree)
        self._plan = plan
        self._recompute()
        if self._tree is not None:
            self._subtree_changed(self._tree.root)
        self.planChanged.emit(plan)

    def set_highlights(self, highlights: dict[str, tuple[QColor, str]]) -> None:
        """Background colours (and a tooltip line) per module path, e.g. sensitivity results;
        an empty dict clears them. Cleared by :meth:`set_tree`."""
        self._highlights = dict(highlights)
        if self._tree is not None:
            for node in self._tree.root.walk():
                if node.children:
                    first, end = node.children[0], node.children[-1]
                    self.dataChanged.emit(
                        self.createIndex(0, 0, first),
                        self.createIndex(len(node.children) - 1, len(COLUMNS) - 1, end),
                        [Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ToolTipRole],
                    )

    def set_advice(self, advice: dict[str, str]) -> None:
        """Per-scheme hardware warnings shown in tooltips (default: from this CPU's features)."""
        self._advice = dict(advice)

    def set_engine_speeds(self, speeds: list[EngineSpeed]) -> None:
        """Measured scheme speeds per engine (default: this machine's doctor report's)."""
        self._engine_speeds = list(speeds)

    @property
    def advice(self) -> dict[str, str]:
        return dict(self._advice)

    def speed_warnings(self, plan: Plan | None = None) -> list[str]:
        """The speed warnings of the schemes ``plan`` (default: the current one) names, and of
        its engine where another one is measured clearly faster here."""
        plan = plan if plan is not None else self._plan
        used = set(plan.entries.values())
        advice = [text for name, text in sorted(self._advice.items()) if name in used]
        return advice + engine_warnings(plan, self._engine_speeds)

    def highlight(self, path: str) -> tuple[QColor, str] | None:
        return self._highlights.get(path)

    def rename_plan(self, name: str) -> None:
        self._plan = Plan(entries=self._plan.entries, settings=self._plan.settings, name=name)
        self.planChanged.emit(self._plan)

    def set_entry(self, path: str, scheme: str | None) -> bool:
        """Set (or with None/"" clear) the plan entry of ``path``; False and ``editRejected`` if invalid."""
        if self._tree is None:
            return False
        try:
            plan, removed = with_entry(self._plan, self._tree, path, scheme)
        except PlanError as exc:
            self.editRejected.emit(str(exc))
            return False
        self._plan = plan
        self._recompute()
        self._subtree_changed(self._tree.root)
        if removed:
            self.entriesDropped.emit(path, removed)
        self.planChanged.emit(plan)
        return True

    def index_of(self, path: str, column: int = 0) -> QModelIndex:
        if self._tree is None or path not in self._tree or not path:
            return QModelIndex()
        node = self._tree[path]
        return self.createIndex(self._rows[id(node)], column, node)

    def _subtree_changed(self, top: ModuleNode) -> None:
        roles: list[int] = []
        if top.path:
            index = self.index_of(top.path)
            self.dataChanged.emit(
                index.siblingAtColumn(COL_MODE), index.siblingAtColumn(COL_EFFECTIVE), roles
            )
        for node in top.walk():
            if node.children:
                first, last = node.children[0], node.children[-1]
                self.dataChanged.emit(
                    self.createIndex(0, COL_MODE, first),
                    self.createIndex(len(node.children) - 1, COL_EFFECTIVE, last),
                    roles,
                )

    # --- QAbstractItemModel ----------------------------------------------------------------
    def _node(self, index: Index) -> ModuleNode | None:
        if not index.isValid():
            return self._tree.root if self._tree is not None else None
        return index.internalPointer()

    def index(self, row: int, column: int, parent: Index = NO_PARENT) -> QModelIndex:
        node = self._node(parent)
        if node is None or column < 0 or column >= len(COLUMNS):
            return QModelIndex()
        if parent.isValid() and parent.column() != 0:
            return QModelIndex()
        if not 0 <= row < len(node.children):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: Index = NO_PARENT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        node: ModuleNode = index.internalPointer()
        up = node.parent
        if up is None or up.parent is None:
            return QModelIndex()
        return self.createIndex(self._rows[id(up)], 0, up)

    def rowCount(self, parent: Index = NO_PARENT) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        node = self._node(parent)
        return 0 if node is None else len(node.children)

    def columnCount(self, parent: Index = NO_PARENT) -> int:
        return len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole and section == COL_MODE:
                return "The scheme set on this module (double-click to change); empty: inherited"
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == COL_MODE:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node: ModuleNode = index.internalPointer()
        column = index.column()
        if role == NodeRole:
            return node
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(node, column)
        if role == Qt.ItemDataRole.EditRole:
            if column == COL_MODE:
                return self._plan.entries.get(node.path, "")
            return self._display(node, column)
        if role == SortRole:
            return {COL_PARAMS: node.total_params, COL_SIZE: node.total_bytes}.get(
                column, self._display(node, column)
            )
        if role == ChoicesRole and column == COL_MODE:
            return [
                (
                    name,
                    get_scheme(name).label,
                    node.verdicts[name].applies,
                    node.verdicts[name].reason,
                    self._advice.get(name, ""),
                )
                for name in scheme_names()
                if name in node.verdicts
            ]
        if role == InheritedRole and column == COL_EFFECTIVE:
            return self._plan.effective(node.path)[1] != node.path
        if role == Qt.ItemDataRole.BackgroundRole and node.path in self._highlights:
            return QBrush(self._highlights[node.path][0])
        if role == Qt.ItemDataRole.ToolTipRole:
            extra = self._highlights.get(node.path)
            tip = self._tooltip(node, column)
            return f"{tip}\n{extra[1]}" if extra else tip
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (COL_PARAMS, COL_SIZE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and column in (COL_MODE, COL_EFFECTIVE):
            return self._font(node, column)
        if role == Qt.ItemDataRole.ForegroundRole and column in (COL_MODE, COL_EFFECTIVE):
            return self._foreground(node, column)
        return None

    def _display(self, node: ModuleNode, column: int) -> str:
        if column == COL_NAME:
            return node.name
        if column == COL_TYPE:
            return node.kind
        if column == COL_PARAMS:
            return f"{node.total_params:,}"
        if column == COL_SIZE:
            return format_bytes(node.total_bytes)
        if column == COL_MODE:
            return self._plan.entries.get(node.path, "")
        return self.effective_text(node.path)

    def _tooltip(self, node: ModuleNode, column: int) -> str:
        if column == COL_MODE:
            lines = [f"{node.path}: choose a scheme (empty inherits from above)"]
            for name, verdict in node.verdicts.items():
                lines.append(f"  {name}: " + ("applies" if verdict.applies else verdict.reason))
            lines += [f"note: {text}" for text in self._advice.values()]
            return "\n".join(lines)
        if column == COL_EFFECTIVE:
            scheme, origin = self._plan.effective(node.path)
            if scheme != "none" and node.path not in self._acting:
                source = "set here" if origin == node.path else f"inherited from {origin}"
                return f"float: {scheme} ({source}) converts nothing in this {node.class_name}"
            if origin == node.path:
                return f"{scheme}: set on this module"
            if origin is None:
                return "none: no entry above this module (float)"
            return f"{scheme}: inherited from {origin}"
        if column == COL_TYPE and node.details is not None:
            return "\n".join([node.path, *node.details.lines()])
        return f"{node.path} ({node.class_name})"

    def _font(self, node: ModuleNode, column: int) -> QFont:
        font = QFont()
        explicit = node.path in self._plan.entries
        if column == COL_MODE:
            font.setBold(explicit)
        else:
            font.setItalic(self._plan.effective(node.path)[1] != node.path)
        return font

    def _foreground(self, node: ModuleNode, column: int) -> QBrush | None:
        scheme, origin = self._plan.effective(node.path)
        if column == COL_EFFECTIVE and (origin != node.path or node.path not in self._acting):
            return QBrush(INHERITED_COLOR)
        shown = self._plan.entries.get(node.path) if column == COL_MODE else scheme
        return QBrush(QColor(SCHEME_COLORS[shown])) if shown in SCHEME_COLORS else None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.EditRole or index.column() != COL_MODE:
            return False
        node: ModuleNode = index.internalPointer()
        scheme = str(value) if value else None
        if (scheme or "") == self._plan.entries.get(node.path, ""):
            return True
        return self.set_entry(node.path, scheme)


class ModuleFilterProxy(QSortFilterProxyModel):
    """Keeps modules whose path or type contains the filter text, with their ancestors."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setRecursiveFilteringEnabled(True)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setSortRole(SortRole)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        pattern = self.filterRegularExpression()
        if not pattern.pattern():
            return True
        model = self.sourceModel()
        node = model.index(source_row, 0, source_parent).data(NodeRole)
        if node is None:
            return False
        return bool(
            pattern.match(node.path).hasMatch()
            or pattern.match(node.class_name).hasMatch()
            or pattern.match(node.kind).hasMatch()
        )
