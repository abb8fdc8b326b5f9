"""Plan edits as a desktop user expects them: undo/redo, presets and plan files that ask before
discarding edits, one remembered folder for the file dialogs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.doctor import cached_report
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import AUTO, make_preset

from .paths import RememberedFolder
from .settings_panel import SettingsPanel
from .tree_model import ModuleTreeModel

MAX_UNDO = 200


def entries_text(plan: Plan) -> str:
    counts = plan.summary()
    return ", ".join(f"{scheme}×{n}" for scheme, n in sorted(counts.items())) or "float, no entries"


class PlanEditor(QObject):
    """Undo/redo over the tree model's plan; ``message(text, level)`` for the log."""

    message = Signal(str, str)
    failed = Signal(str)

    def __init__(
        self,
        tree_model: ModuleTreeModel,
        settings_panel: SettingsPanel,
        folder: RememberedFolder,
        parent_widget: QWidget,
        confirm: bool = True,
    ) -> None:
        super().__init__(parent_widget)
        self.model = tree_model
        self.settings_panel = settings_panel
        self.folder = folder
        self.parent_widget = parent_widget
        self.confirm = confirm
        self.ask: Callable[[str], bool] = self._ask
        """Asks a yes/no question (tests replace it)."""
        self._done: list[Plan] = [tree_model.plan]
        self._undone: list[Plan] = []
        self._clean: Plan = tree_model.plan
        self._moving = False
        self.undo_action = QAction("Undo plan edit", self)
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.undo_action.triggered.connect(self.undo)
        self.redo_action = QAction("Redo plan edit", self)
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        self.redo_action.triggered.connect(self.redo)
        tree_model.planChanged.connect(self._plan_changed)
        tree_model.modelReset.connect(self._reset)
        self._update_actions()

    # --- undo / redo -----------------------------------------------------------------------
    def _reset(self) -> None:
        self._done, self._undone = [self.model.plan], []
        self._clean = self.model.plan
        self._update_actions()

    def _plan_changed(self, plan: Plan) -> None:
        if self._moving or (self._done and self._done[-1] is plan):
            return
        self._done.append(plan)
        del self._done[:-MAX_UNDO]
        self._undone.clear()
        self._update_actions()

    def _update_actions(self) -> None:
        self.undo_action.setEnabled(len(self._done) > 1)
        self.redo_action.setEnabled(bool(self._undone))

    def _show(self, plan: Plan) -> None:
        self._moving = True
        try:
            self.model.set_plan(plan)
        finally:
            self._moving = False
        self._update_actions()

    def undo(self) -> bool:
        if len(self._done) < 2:
            return False
        self._undone.append(self._done.pop())
        self._show(self._done[-1])
        self.message.emit(f"undo: plan {entries_text(self._done[-1])}", "info")
        return True

    def redo(self) -> bool:
        if not self._undone:
            return False
        self._done.append(self._undone.pop())
        self._show(self._done[-1])
        self.message.emit(f"redo: plan {entries_text(self._done[-1])}", "info")
        return True

    @property
    def edited(self) -> bool:
        """True when the plan has entries edited since the last preset, plan file or save."""
        plan = self.model.plan
        return plan.entries != self._clean.entries

    def _ask(self, question: str) -> bool:
        answer = QMessageBox.question(self.parent_widget, "speechquant", question)
        return answer == QMessageBox.StandardButton.Yes

    def may_discard(self, what: str) -> bool:
        """Ask before ``what`` replaces an edited plan; True to go ahead."""
        if not self.confirm or not self.edited:
            return True
        return self.ask(f"{what} replaces the plan you edited ({entries_text(self.model.plan)}). "
                        "Discard your edits?")  # fmt: skip

    # --- presets and plan files ------------------------------------------------------------
    def apply_preset(self, name: str) -> bool:
        tree = self.model.tree
        if tree is None:
            self.failed.emit("open a model before choosing a preset")
            return False
        if not self.may_discard(f"the preset {name}"):
            return False
        settings = self.settings_panel.quant_settings(self.model.plan.settings)
        speeds = None
        if name == AUTO:
            report = cached_report()
            if report is None or not report.speeds:
                self.failed.emit(
                    "the auto preset picks what was measured faster on this machine; measure it "
                    "first with Help > About this machine > Measure"
                )
                return False
            speeds = report.measured_speeds()
        try:
            plan = make_preset(name, tree, None if speeds else settings, speeds=speeds)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return False
        self.model.set_plan(plan)
        self._clean = plan
        self.message.emit(f"preset {name}: {entries_text(plan)}", "info")
        for text in self.model.speed_warnings(plan):
            self.message.emit(text, "warning")
        return True

    def load_file(self, path: str) -> bool:
        if not self.may_discard(f"the plan file {Path(path).name}"):
            return False
        try:
            plan = Plan.load(path)
            if self.model.tree is not None:
                self.model.set_plan(plan)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return False
        self._clean = plan
        self.settings_panel.set_quant_settings(plan.settings)
        self.folder.remember(path)
        self.message.emit(f"loaded plan {plan.name} from {path}", "info")
        return True

    def save_file(self, path: str, plan: Plan) -> bool:
        try:
            plan.save(path)
        except (SpeechquantError, OSError) as exc:
            self.failed.emit(f"cannot save the plan to {path}: {exc}")
            return False
        self._clean = self.model.plan
        self.folder.remember(path)
        self.message.emit(f"saved plan to {path}", "info")
        return True

    def load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.parent_widget, "Load plan", self.folder.get(), "Plans (*.json);;All files (*)"
        )
        if path:
            self.load_file(path)

    def save_dialog(self, plan: Plan) -> None:
        start = str(Path(self.folder.get()) / f"{plan.name}.json")
        path, _ = QFileDialog.getSaveFileName(
            self.parent_widget, "Save plan", start, "Plans (*.json)"
        )
        if path:
            self.save_file(path, plan)
