"""The Plan tab's module panel: what the selected module is (core's ModuleDetails, displayed)
and the scheme the plan gives it."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QGroupBox, QTextBrowser, QVBoxLayout, QWidget

from speechquant.core.formatting import format_bytes
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import FLOAT_SCHEME
from speechquant.core.quantization.tree import ModuleNode

from .tree_model import ModuleTreeModel

EMPTY = "Select a module in the tree to see its class, weights and quantization parameters."


def scheme_text(node: ModuleNode, plan: Plan, converts: bool) -> str:
    """The scheme line: the scheme that made the loaded module (an export's), else the plan's
    effective scheme and the entry it comes from, ``dynamic (from encoder.layers)``;
    ``none (float)`` where no entry covers the module.

    ``converts``: whether the effective scheme converts something in this module (the tree
    model's :meth:`~.tree_model.ModuleTreeModel.converts`)."""
    made = node.details.scheme if node.details is not None else None
    if made is not None:
        return f"{made} (in the loaded model)"
    scheme, origin = plan.effective(node.path)
    if origin is None:
        return f"{FLOAT_SCHEME} (float)"
    where = "set here" if origin == node.path else f"from {origin}"
    if scheme == FLOAT_SCHEME:
        return f"{FLOAT_SCHEME} (float, {where})"
    if not converts:
        return f"float: {scheme} ({where}) converts nothing in this {node.class_name}"
    return f"{scheme} ({where})"


class ModulePanel(QGroupBox):
    """Class, scheme, each weight's dtype and shape, packed bytes and quantization parameters;
    the scheme line follows ``model``'s plan."""

    def __init__(self, model: ModuleTreeModel, parent: QWidget | None = None) -> None:
        super().__init__("Module", parent)
        self.model = model
        self.browser = QTextBrowser()
        self.browser.setObjectName("moduleDetails")
        self.browser.setOpenLinks(False)
        QVBoxLayout(self).addWidget(self.browser)
        self.node: ModuleNode | None = None
        self.show_node(None)
        model.planChanged.connect(self._plan_changed)

    def _plan_changed(self, _plan: Plan) -> None:
        self.show_node(self.node)

    def text(self) -> str:
        return self.browser.toPlainText()

    def show_node(self, node: ModuleNode | None) -> None:
        self.node = node
        details = node.details if node is not None else None
        if node is None or details is None:
            self.setTitle("Module")
            self.browser.setHtml(f'<p style="color:#666">{html.escape(EMPTY)}</p>')
            return
        self.setTitle(f"Module {node.path}")
        rows = [
            ("kind", details.kind),
            ("class", details.qualified_class),
            ("scheme", scheme_text(node, self.model.plan, self.model.converts(node.path))),
        ]
        if details.note:
            rows.append(("computes", details.note))
        rows.append(("params", f"{node.total_params:,} ({format_bytes(node.total_bytes)} in all)"))
        if details.packed_bytes:
            rows.append(("packed", format_bytes(details.packed_bytes)))
        if details.output is not None:
            rows.append(("output", details.output.text()))
        cells = "".join(
            f'<tr><td style="color:#555; padding-right:8px">{html.escape(k)}</td>'
            f"<td>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        tensors = "".join(f"<li>{html.escape(t.text())}</li>" for t in details.tensors)
        weights = (
            f"<p><b>tensors</b></p><ul>{tensors}</ul>"
            if tensors
            else ('<p style="color:#666">no weights of its own</p>')
        )
        self.browser.setHtml(
            f"<p><b>{html.escape(details.kind)}</b></p><table>{cells}</table>{weights}"
        )
