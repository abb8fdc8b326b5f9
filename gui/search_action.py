"""Run ▸ Sensitivity analysis and Run ▸ Suggest plan…: core's per-unit analysis and plan search
in the window's worker slot, shown in the Sensitivity tab, the tree colours and the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.measure import OBJECTIVES
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback
from speechquant.core.quantization.schemes import quantizing_schemes, search_candidates
from speechquant.core.quantization.settings import ENGINES, QuantSettings
from speechquant.core.search.plan_search import (
    SearchResult,
    SearchSettings,
    default_engines,
    run_search,
)
from speechquant.core.search.sensitivity import (
    SensitivityResult,
    SensitivitySettings,
    run_sensitivity,
)

from .sensitivity_view import SensitivityView
from .worker import Worker

if TYPE_CHECKING:
    from .main_window import MainWindow

RESUME_NOTE = "finished measurements are kept in the run history; run it again to resume"


def sensitivity_job(
    model: LoadedModel,
    data: str,
    bench: BenchSettings,
    settings: SensitivitySettings,
    history: HistoryStore | None,
) -> Any:
    """Every unit × scheme on the first ``bench.limit`` utterances of ``data`` (resumable)."""

    def job(progress: ProgressCallback, cancel: CancelToken) -> SensitivityResult:
        dataset = open_dataset(data, limit=bench.limit, progress=progress, cancel=cancel)
        return run_sensitivity(
            model, dataset, history, settings=settings, bench=bench, progress=progress,
            cancel=cancel,
        )  # fmt: skip

    return job


def search_job(
    model: LoadedModel,
    data: str,
    bench: BenchSettings,
    settings: SearchSettings,
    history: HistoryStore | None,
) -> Any:
    """Plan search on the first ``bench.limit`` utterances of ``data``, split three ways."""

    def job(progress: ProgressCallback, cancel: CancelToken) -> SearchResult:
        dataset = open_dataset(data, limit=bench.limit, progress=progress, cancel=cancel)
        return run_search(
            model, dataset, settings, history, bench=bench, progress=progress, cancel=cancel
        )

    return job


@dataclass
class SuggestChoice:
    """What the Suggest plan dialog asks for (the rest comes from the settings panel)."""

    max_wer_increase: float = 1.0
    objective: str = "rtf"
    schemes: tuple[str, ...] = field(default_factory=search_candidates)
    engines: tuple[str, ...] = ()
    search_n: int = 20
    max_evals: int = 30

    def settings(self, quant: QuantSettings) -> SearchSettings:
        """Core's settings; raises its errors for values it rejects."""
        return SearchSettings(
            max_wer_increase=self.max_wer_increase,
            objective=self.objective,
            schemes=self.schemes,
            engines=self.engines or default_engines(),
            search_n=self.search_n,
            max_evals=self.max_evals,
            quant=quant,
        )


class SuggestDialog(QDialog):
    """Budget, objective, schemes and engines for a plan search."""

    def __init__(self, choice: SuggestChoice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Suggest plan")
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0.0, 100.0)
        self.budget.setDecimals(2)
        self.budget.setSingleStep(0.25)
        self.budget.setSuffix(" WER points")
        self.budget.setValue(choice.max_wer_increase)
        self.objective = QComboBox()
        self.objective.addItems(list(OBJECTIVES))
        self.objective.setCurrentText(choice.objective)
        self.objective.setToolTip("rtf: fastest end-to-end; rtf-encoder: fastest encoder; size")
        self.schemes = {s: QCheckBox(s) for s in quantizing_schemes()}
        self.engines = {e: QCheckBox(e) for e in ENGINES}
        engines = choice.engines or default_engines()
        for name, box in self.schemes.items():
            box.setChecked(name in choice.schemes)
        for name, box in self.engines.items():
            box.setChecked(name in engines)
        self.search_n = QSpinBox()
        self.search_n.setRange(1, 10_000)
        self.search_n.setValue(choice.search_n)
        self.search_n.setToolTip(
            "Utterances the search measures on; the rest of the Data settings' utterances "
            "(after calibration) confirm the plan found"
        )
        self.max_evals = QSpinBox()
        self.max_evals.setRange(1, 1000)
        self.max_evals.setValue(choice.max_evals)
        form = QFormLayout(self)
        form.addRow(
            QLabel(
                "Search per-unit schemes for the fastest (or smallest) plan whose WER stays "
                "within the budget.\nData, benchmark and quantization settings come from the "
                "Plan tab's settings panel."
            )
        )
        form.addRow("Max WER increase", self.budget)
        form.addRow("Objective", self.objective)
        form.addRow("Schemes", self._row(self.schemes.values()))
        form.addRow("Engines", self._row(self.engines.values()))
        form.addRow("Search utterances", self.search_n)
        form.addRow("Max plans measured", self.max_evals)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @staticmethod
    def _row(boxes: Any) -> QWidget:
        widget = QWidget()
        layout = QHBoxLayout(widget)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in boxes:
            layout.addWidget(box)
        layout.addStretch(1)
        return widget

    def choice(self) -> SuggestChoice:
        return SuggestChoice(
            max_wer_increase=self.budget.value(),
            objective=self.objective.currentText(),
            schemes=tuple(s for s, box in self.schemes.items() if box.isChecked()),
            engines=tuple(e for e, box in self.engines.items() if box.isChecked()),
            search_n=self.search_n.value(),
            max_evals=self.max_evals.value(),
        )


class Analyzer(QObject):
    """Owns the Sensitivity tab and both actions; jobs use the window's single worker slot.

    ``sensitivityDone(SensitivityResult)`` and ``searchDone(SearchResult)`` follow a finished
    job; failures go to the window's log and error dialog and leave the plan as it was.
    """

    sensitivityDone = Signal(object)
    searchDone = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.choice = SuggestChoice()
        self.view = SensitivityView()
        window.tabs.addTab(self.view, "Sensitivity")
        self.sensitivity_action = QAction("Sensitivity analysis", window)
        self.sensitivity_action.setIconText("Sensitivity")
        self.sensitivity_action.setToolTip(
            "Measure each unit (layer, block) quantized alone under each scheme on the Data "
            "settings: ΔWER, speed-up, size saved, leave-one-out; colours the module tree"
        )
        self.suggest_action = QAction("Suggest plan…", window)
        self.suggest_action.setToolTip(
            "Search for the fastest (or smallest) per-unit plan within a WER budget and load it"
        )
        self.actions = [self.sensitivity_action, self.suggest_action]
        for action in self.actions:
            action.setEnabled(False)
        self.sensitivity_action.triggered.connect(lambda _c=False: self.run_sensitivity())
        self.suggest_action.triggered.connect(self.ask_suggest)
        self.view.run_button.clicked.connect(lambda _c=False: self.run_sensitivity())
        self.view.suggest_button.clicked.connect(self.ask_suggest)
        self.view.coloursChanged.connect(window.tree_model.set_highlights)
        window.modelLoaded.connect(self._model_changed)

    @Slot(object)
    def _model_changed(self, _model: LoadedModel) -> None:
        for action in self.actions:
            action.setEnabled(True)
        self.view.clear()

    def _inputs(self, what: str) -> tuple[LoadedModel, str, BenchSettings, QuantSettings] | None:
        window = self.window
        model = window.model
        if model is None:
            window.report_error(f"open a model before {what}")
            return None
        if model.plan is not None:
            window.report_error(
                f"{model.source} is already quantized (an export); open the float model first"
            )
            return None
        data = window.settings_panel.dataset_spec()
        if not data:
            window.report_error(
                "choose a dataset (a folder, a manifest or demo) in the Data settings"
            )
            return None
        if not window._can_start():
            return None
        try:
            bench = window.settings_panel.bench_settings()
            quant = window.settings_panel.quant_settings(window.plan.settings)
        except SpeechquantError as exc:
            window.report_error(str(exc))
            return None
        return model, data, bench, quant

    def _start(self, worker: Worker, what: str) -> None:
        worker.cancel_note = RESUME_NOTE  # what the window logs on cancel
        self.window._start(worker, what)

    # --- sensitivity -----------------------------------------------------------------------
    def run_sensitivity(self, schemes: tuple[str, ...] | None = None) -> bool:
        """Start the analysis of the window's model on the Data settings; False if it cannot.

        ``schemes``: those to try (default: the registry's search candidates)."""
        inputs = self._inputs("running a sensitivity analysis")
        if inputs is None:
            return False
        model, data, bench, quant = inputs
        schemes = schemes or search_candidates()
        settings = SensitivitySettings(schemes=schemes, quant=quant)
        self.window.log(f"sensitivity: {model.source} on {data}, schemes {', '.join(schemes)}")
        worker = Worker(
            sensitivity_job(model, data, bench, settings, self.window.history), "sensitivity"
        )
        worker.result.connect(self._sensitivity_done)
        self._start(worker, "sensitivity analysis")
        return True

    @Slot(object)
    def _sensitivity_done(self, result: SensitivityResult) -> None:
        self.view.set_result(result)
        self.window.log(
            f"sensitivity: {len(result.rows)} unit × scheme rows on {len(result.ids)} "
            f"utterances; {result.computed} measured, {result.reused} reused"
        )
        self.sensitivityDone.emit(result)

    # --- plan search -----------------------------------------------------------------------
    def ask_suggest(self) -> None:
        if self.window.model is None:
            self.window.report_error("open a model before asking for a plan")
            return
        dialog = SuggestDialog(self.choice, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.suggest(dialog.choice())

    def suggest(self, choice: SuggestChoice) -> bool:
        """Start the plan search; its plan replaces the window's plan when it finishes."""
        inputs = self._inputs("asking for a plan")
        if inputs is None:
            return False
        model, data, bench, quant = inputs
        self.choice = choice
        try:
            settings = choice.settings(quant)
        except SpeechquantError as exc:
            self.window.report_error(str(exc))
            return False
        self.window.log(
            f"suggest plan: {settings.objective} within {settings.max_wer_increase:+.2f} WER "
            f"points on {data} (schemes {', '.join(settings.schemes)}; engines "
            f"{', '.join(settings.engines)})"
        )
        worker = Worker(search_job(model, data, bench, settings, self.window.history), "search")
        worker.result.connect(self._search_done)
        self._start(worker, "plan search")
        return True

    @Slot(object)
    def _search_done(self, result: SearchResult) -> None:
        window = self.window
        self.view.set_search(result)
        try:
            window.tree_model.set_plan(result.plan)
        except SpeechquantError as exc:
            window.report_error(f"the plan found does not fit the model: {exc}")
            return
        window.settings_panel.set_quant_settings(result.plan.settings)
        m, ev = result.search, result.evaluation
        verdict = "within" if result.within_budget_on_evaluation else "OVER"
        window.log(
            f"suggested plan {result.plan.name} ({result.plan.settings.engine}, "
            f"{len(result.plan.entries)} entries) loaded: search split ΔWER {m.delta_wer:+.2f}, "
            f"{m.speedup:.2f}× faster; evaluation split ΔWER {ev.delta_wer:+.2f} ({verdict} "
            f"budget); {len(result.steps)} plans tried"
        )
        self.searchDone.emit(result)
