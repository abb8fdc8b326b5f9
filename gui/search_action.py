"""Run ▸ Sensitivity analysis and Run ▸ Suggest plan…: core's per-unit analysis and plan search
in the window's job slot, shown in the Sensitivity tab, the tree colours and the plan."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QWidget

from speechquant.core.cluster.session import cluster_executor
from speechquant.core.cluster.settings import ClusterSettings
from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback
from speechquant.core.quantization.schemes import search_candidates
from speechquant.core.search.plan_search import SearchResult, SearchSettings, run_search
from speechquant.core.search.sensitivity import (
    SensitivityResult,
    SensitivitySettings,
    run_sensitivity,
)
from speechquant.core.search.splits import owns_calibration
from speechquant.core.sources import open_model

from .job_slot import JobSlot
from .jobs import ratio_text
from .run_context import ContextSource, RunContext
from .sensitivity_view import SensitivityView
from .suggest_dialog import SuggestChoice, SuggestDialog, count_utterances
from .worker import Worker

__all__ = ["Analyzer", "SuggestChoice", "search_job", "sensitivity_job"]

RESUME_NOTE = "finished measurements are kept in the run history; run it again to resume"


def sensitivity_job(
    model: LoadedModel,
    data: str,
    bench: BenchSettings,
    settings: SensitivitySettings,
    history: HistoryStore | None,
    cluster: ClusterSettings | None = None,
) -> Any:
    """Every unit × scheme on the first ``bench.limit`` utterances of ``data`` (resumable);
    ``cluster``: transcribed on that Ray cluster."""

    def job(progress: ProgressCallback, cancel: CancelToken) -> SensitivityResult:
        dataset = open_dataset(data, limit=bench.limit, progress=progress, cancel=cancel)
        with cluster_executor(cluster, model, open_model) as executor:
            return run_sensitivity(
                model, dataset, history, settings=settings, bench=bench, progress=progress,
                cancel=cancel, executor=executor,
            )  # fmt: skip

    return job


def search_job(
    model: LoadedModel,
    data: str,
    bench: BenchSettings,
    settings: SearchSettings,
    history: HistoryStore | None,
    cluster: ClusterSettings | None = None,
) -> Any:
    """Plan search on all of ``data``, split into calibration, search and evaluation (the Eval
    limit is for benchmarks; ``settings.eval_n`` bounds the evaluation split); ``cluster``:
    transcribed on that Ray cluster."""

    def job(progress: ProgressCallback, cancel: CancelToken) -> SearchResult:
        dataset = open_dataset(data, progress=progress, cancel=cancel)
        with cluster_executor(cluster, model, open_model) as executor:
            return run_search(
                model, dataset, settings, history, bench=bench, progress=progress,
                cancel=cancel, executor=executor,
            )  # fmt: skip

    return job


class Analyzer(QObject):
    """Owns the Sensitivity tab (the window adds it) and both actions; jobs use the job slot.

    ``sensitivityDone(SensitivityResult)`` and ``searchDone(SearchResult)`` follow a finished
    job, ``planFound(Plan)`` asks the window to load a suggested plan; ``failed(text)`` and
    ``message(text, level)`` go to the window's log (the plan is left as it was on failure).
    """

    sensitivityDone = Signal(object)
    searchDone = Signal(object)
    planFound = Signal(object)
    message = Signal(str, str)
    failed = Signal(str)

    def __init__(self, slot: JobSlot, contexts: ContextSource, parent: QWidget) -> None:
        super().__init__(parent)
        self.slot = slot
        self.contexts = contexts
        self.parent_widget = parent
        self.choice = SuggestChoice()
        self.view = SensitivityView()
        self.sensitivity_action = QAction("Sensitivity analysis", parent)
        self.sensitivity_action.setIconText("Sensitivity")
        self.sensitivity_action.setToolTip(
            "Measure each unit (layer, block) quantized alone under each scheme on the Data "
            "settings: ΔWER, speed-up, size saved, leave-one-out; colours the module tree"
        )
        self.suggest_action = QAction("Suggest plan…", parent)
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
        slot.busyChanged.connect(lambda _busy: self._update())

    def _update(self) -> None:
        usable = self.contexts.model is not None and not self.slot.busy
        for action in self.actions:
            action.setEnabled(usable)

    @Slot(object)
    def model_changed(self, _model: LoadedModel) -> None:
        self._update()
        self.view.clear()

    def _context(self, what: str) -> RunContext | None:
        if not self.slot.can_start():
            return None
        try:
            return self.contexts.snapshot(what, float_model=True)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return None

    def _start(self, worker: Worker, what: str) -> bool:
        worker.default_note = RESUME_NOTE  # what the window logs on cancel
        return self.slot.start(worker, what) is not None

    # --- sensitivity -----------------------------------------------------------------------
    def run_sensitivity(self, schemes: tuple[str, ...] | None = None) -> bool:
        """Start the analysis of the open model on the Data settings; False if it cannot.

        ``schemes``: those to try (default: the registry's search candidates)."""
        ctx = self._context("running a sensitivity analysis")
        if ctx is None:
            return False
        try:
            settings = SensitivitySettings(schemes=schemes or search_candidates(), quant=ctx.quant)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return False
        self.message.emit(
            f"sensitivity: {ctx.model.source} on {ctx.data}, schemes {', '.join(settings.schemes)}",
            "info",
        )
        job = sensitivity_job(ctx.model, ctx.data, ctx.bench, settings, ctx.history, ctx.cluster)
        worker = Worker(job, "sensitivity")
        worker.result.connect(self._sensitivity_done)
        return self._start(worker, "sensitivity analysis")

    @Slot(object)
    def _sensitivity_done(self, result: SensitivityResult) -> None:
        self.view.set_result(result)
        self.message.emit(
            f"sensitivity: {len(result.rows)} unit × scheme rows on {len(result.ids)} "
            f"utterances; {result.computed} measured, {result.reused} reused",
            "info",
        )
        self.sensitivityDone.emit(result)

    # --- plan search -----------------------------------------------------------------------
    def dialog(self) -> SuggestDialog | None:
        """The Suggest plan dialog for the current Data settings (None and ``failed`` if no
        model is open)."""
        model = self.contexts.model
        if model is None:
            self.failed.emit("open a model before asking for a plan")
            return None
        panel = self.contexts.settings
        data = panel.dataset_spec()
        bench = panel.bench_settings()
        own = owns_calibration(data, bench) if data else True
        total = count_utterances(data) if data and panel.dataset.problem is None else None
        return SuggestDialog(self.choice, data, total, bench.calib_n, own, self.parent_widget)

    def ask_suggest(self) -> None:
        dialog = self.dialog()
        if dialog is not None and dialog.exec() == QDialog.DialogCode.Accepted:
            self.suggest(dialog.choice())

    def suggest(self, choice: SuggestChoice) -> bool:
        """Start the plan search; ``planFound`` carries its plan when it finishes."""
        ctx = self._context("asking for a plan")
        if ctx is None:
            return False
        self.choice = choice
        try:
            settings = choice.settings(ctx.quant)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return False
        self.message.emit(
            f"suggest plan: {settings.objective} within {settings.max_wer_increase:+.2f} WER "
            f"points on {ctx.data} (schemes {', '.join(settings.schemes)}; engines "
            f"{', '.join(settings.engines)})",
            "info",
        )
        job = search_job(ctx.model, ctx.data, ctx.bench, settings, ctx.history, ctx.cluster)
        worker = Worker(job, "search")
        worker.result.connect(self._search_done)
        return self._start(worker, "plan search")

    @Slot(object)
    def _search_done(self, result: SearchResult) -> None:
        self.view.set_search(result)
        self.planFound.emit(result.plan)
        m, ev = result.search, result.evaluation
        verdict = "within" if result.within_budget_on_evaluation else "OVER"
        self.message.emit(
            f"suggested plan {result.plan.name} ({result.plan.settings.engine}, "
            f"{len(result.plan.entries)} entries) loaded: search split ΔWER {m.delta_wer:+.2f}, "
            f"{ratio_text(m.speedup, 'faster', 'slower')}; evaluation split ΔWER "
            f"{ev.delta_wer:+.2f} ({verdict} budget); {len(result.steps)} plans tried",
            "info",
        )
        self.searchDone.emit(result)
