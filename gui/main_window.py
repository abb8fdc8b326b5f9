"""The main window: open a model, edit its plan, run benchmarks in a worker, read the results."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
)

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import ModuleTree, build_tree, human_bytes
from speechquant.core.quantization.validation import validate_plan

from .export_action import Exporter
from .jobs import Loaded, RunOutcome, describe, load_job, run_job
from .microphone_tab import MicrophoneTab
from .model_bar import ModelBar
from .plan_panel import PlanPanel
from .results_view import ResultsView
from .run_panel import RunPanel
from .search_action import Analyzer
from .settings_panel import SettingsPanel
from .utterances_view import UtterancesView
from .worker import Job, Worker, start_worker

TAB_PLAN, TAB_RESULTS, TAB_UTTERANCES = range(3)


def open_history() -> tuple[HistoryStore, str | None]:
    """The user's run history; a temporary one (and why) when it cannot be used."""
    try:
        return HistoryStore(), None
    except SpeechquantError as exc:
        fallback = Path(tempfile.mkdtemp(prefix="speechquant-")) / "history.sqlite"
        return HistoryStore(fallback), f"{exc}; runs go to {fallback} for this session"


def entries_text(plan: Plan) -> str:
    counts = plan.summary()
    return ", ".join(f"{scheme}×{n}" for scheme, n in sorted(counts.items())) or "float, no entries"


class MainWindow(QMainWindow):
    """``show_error_dialogs=False`` keeps errors in the log only (tests, screenshots)."""

    modelLoaded = Signal(object)
    runCompleted = Signal(object)
    jobProgress = Signal(int, int, str)
    jobFailed = Signal(str)
    jobFinished = Signal()

    def __init__(
        self,
        settings: QSettings | None = None,
        history: HistoryStore | None = None,
        show_error_dialogs: bool = True,
    ) -> None:
        super().__init__()
        self.setWindowTitle("speechquant")
        self.settings = (
            settings if settings is not None else QSettings("speechquant", "speechquant-gui")
        )
        startup_error = None
        if history is None:
            history, startup_error = open_history()
        self.history = history
        self.show_error_dialogs = show_error_dialogs
        self.model: LoadedModel | None = None
        self.job: Job | None = None
        self._error_box: QMessageBox | None = None

        self.plan_panel = PlanPanel()
        self.settings_panel = SettingsPanel(self.settings)
        self.results = ResultsView(self.history, confirm=show_error_dialogs)
        self.utterances = UtterancesView(self.history)
        self.run_panel = RunPanel()
        self.tree_model = self.plan_panel.model

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plan_panel)
        split.addWidget(self.settings_panel)
        split.setStretchFactor(0, 1)
        split.setSizes([1000, 340])
        self.tabs = QTabWidget()
        self.tabs.addTab(split, "Plan")
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.utterances, "Utterances")
        self.microphone = MicrophoneTab.for_window(self)
        self.tabs.addTab(self.microphone, "Microphone")
        self.setCentralWidget(self.tabs)
        dock = QDockWidget("Run", self)
        dock.setObjectName("runDock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(self.run_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.resizeDocks([dock], [190], Qt.Orientation.Vertical)
        self.model_label = QLabel("no model")
        self.statusBar().addPermanentWidget(self.model_label)

        self.model_bar = ModelBar(self.settings, self)
        self.model_bar.sourceRequested.connect(self.open_source)
        self.addToolBar(self.model_bar)
        self.recent_menu = self.model_bar.recent_menu
        self.exporter = Exporter(self)
        self.model_bar.addAction(self.exporter.action)
        self.analyzer = Analyzer(self)  # the Sensitivity tab, Sensitivity and Suggest plan…
        self.model_bar.addActions(self.analyzer.actions)
        self._build_menus()
        self._wire()
        self.results.set_current_source(None)
        self.utterances.load_runs(None)
        self.run_panel.idle("open a model to start", can_run=False)
        self.resize(1400, 900)
        if startup_error:
            self.report_error(startup_error)

    # --- construction ----------------------------------------------------------------------
    def _build_menus(self) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addMenu(self.model_bar.builtins_menu)
        file_menu.addAction(self.model_bar.folder_action)
        file_menu.addAction(self.model_bar.hf_action)
        file_menu.addMenu(self.model_bar.recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.exporter.action)
        file_menu.addSeparator()
        file_menu.addAction("Quit", QKeySequence.StandardKey.Quit, self.close)
        plan_menu = menus.addMenu("&Plan")
        plan_menu.addMenu(self.plan_panel.preset_menu)
        plan_menu.addAction(self.plan_panel.load_action)
        plan_menu.addAction(self.plan_panel.save_action)
        plan_menu.addSeparator()
        plan_menu.addAction(self.plan_panel.expand_action)
        plan_menu.addAction(self.plan_panel.collapse_action)
        run_menu = menus.addMenu("&Run")
        self.run_action = run_menu.addAction(
            "Run benchmark", QKeySequence("Ctrl+R"), self.run_benchmark
        )
        run_menu.addAction("Cancel", self.cancel_job)
        run_menu.addSeparator()
        run_menu.addActions(self.analyzer.actions)

    def _wire(self) -> None:
        panel = self.plan_panel
        for name, action in panel.preset_actions.items():
            action.triggered.connect(lambda _c=False, n=name: self.apply_preset(n))
        panel.load_action.triggered.connect(self._load_plan_dialog)
        panel.save_action.triggered.connect(self._save_plan_dialog)
        self.tree_model.editRejected.connect(lambda text: self.log(text, "warning"))
        self.tree_model.entriesDropped.connect(
            lambda path, inner: self.log(
                f"{path} is now one block; removed the entries inside it: {', '.join(inner)}"
            )
        )
        self.settings_panel.changed.connect(self._settings_changed)
        self.run_panel.run_button.clicked.connect(self.run_benchmark)
        self.run_panel.cancel_button.clicked.connect(self.cancel_job)
        self.results.compareRequested.connect(self._show_pair)
        self.results.message.connect(self.log)
        self.results.failed.connect(self.report_error)
        self._settings_changed()

    # --- logging and errors ----------------------------------------------------------------
    def log(self, text: str, level: str = "info") -> None:
        self.run_panel.add_log(text, level)
        self.statusBar().showMessage(text, 8000)

    def report_error(self, text: str) -> None:
        """Into the log, and a dialog unless dialogs are off; never raises."""
        self.log(text, "error")
        if self.show_error_dialogs:
            self._error_box = QMessageBox(
                QMessageBox.Icon.Critical, "speechquant", text, parent=self
            )
            self._error_box.open()

    # --- models ----------------------------------------------------------------------------
    def recent_sources(self) -> list[str]:
        return self.model_bar.recent_sources()

    def open_source(self, source: str) -> bool:
        """Load ``source`` in a worker; ``modelLoaded`` or ``jobFailed`` follows."""
        if not self._can_start():
            return False
        self.model_bar.set_source(source)
        self.log(f"opening {source}")
        worker = Worker(load_job(source), "load")
        worker.result.connect(self._model_loaded)
        self._start(worker, f"opening {source}")
        return True

    @Slot(object)
    def _model_loaded(self, loaded: Loaded) -> None:
        self.set_model(loaded.model, loaded.tree)
        self.model_bar.remember(loaded.model.source)

    def set_model(self, model: LoadedModel, tree: ModuleTree | None = None) -> None:
        """Show ``model`` (already loaded); the plan is kept where it fits the new model."""
        tree = tree if tree is not None else build_tree(model.mods)
        self.model = model
        plan = self.tree_model.plan
        try:
            validate_plan(plan, tree)
        except SpeechquantError:
            plan = Plan(settings=plan.settings, name="none")
        self.tree_model.set_tree(tree, plan)
        self.plan_panel.show_tree()
        nodes = sum(1 for _ in tree.nodes())
        info = f"{model.source} · {model.interface} · {nodes} modules · {human_bytes(tree.root.total_bytes)}"
        self.model_label.setText(info)
        self.model_label.setMinimumWidth(self.model_label.sizeHint().width())
        self.setWindowTitle(f"speechquant — {model.source}")
        self.model_bar.set_source(model.source)
        self.results.set_current_source(model.source)
        self.utterances.load_runs(model.source)
        self.run_panel.idle("ready", can_run=self.job is None)
        self.log(f"opened {info}")
        self.modelLoaded.emit(model)

    # --- plans -----------------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        return self.tree_model.plan

    def _settings_changed(self) -> None:
        try:
            self.plan_panel.set_quant_settings(
                self.settings_panel.quant_settings(self.plan.settings)
            )
        except SpeechquantError as exc:
            self.log(str(exc), "warning")

    def apply_preset(self, name: str) -> bool:
        tree = self.tree_model.tree
        if tree is None:
            self.report_error("open a model before choosing a preset")
            return False
        try:
            plan = make_preset(name, tree, self.settings_panel.quant_settings(self.plan.settings))
        except SpeechquantError as exc:
            self.report_error(str(exc))
            return False
        self.tree_model.set_plan(plan)
        self.log(f"preset {name}: {entries_text(plan)}")
        return True

    def load_plan_file(self, path: str) -> bool:
        try:
            plan = Plan.load(path)
            if self.tree_model.tree is not None:
                self.tree_model.set_plan(plan)
        except SpeechquantError as exc:
            self.report_error(str(exc))
            return False
        self.settings_panel.set_quant_settings(plan.settings)
        self.log(f"loaded plan {plan.name} from {path}")
        return True

    def current_plan(self) -> Plan:
        """A copy of the plan with the settings panel's quantization settings."""
        plan = self.plan
        settings = self.settings_panel.quant_settings(plan.settings)
        return Plan(entries=dict(plan.entries), settings=settings, name=plan.name)

    def save_plan_file(self, path: str) -> bool:
        try:
            self.current_plan().save(path)
        except (SpeechquantError, OSError) as exc:
            self.report_error(f"cannot save the plan to {path}: {exc}")
            return False
        self.log(f"saved plan to {path}")
        return True

    def _load_plan_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load plan", "", "Plans (*.json);;All files (*)"
        )
        if path:
            self.load_plan_file(path)

    def _save_plan_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save plan", f"{self.plan.name}.json", "Plans (*.json)"
        )
        if path:
            self.save_plan_file(path)

    # --- runs ------------------------------------------------------------------------------
    def run_benchmark(self) -> bool:
        """Baseline + current plan on the settings panel's dataset, in a worker."""
        if self.model is None:
            self.report_error("open a model before running a benchmark")
            return False
        if not self._can_start():
            return False
        data = self.settings_panel.dataset_spec()
        if not data:
            self.report_error(
                "choose a dataset (a folder, a manifest or demo) in the Data settings"
            )
            return False
        try:
            bench = self.settings_panel.bench_settings()
            plan = self.current_plan()
        except SpeechquantError as exc:
            self.report_error(str(exc))
            return False
        self.log(f"run: plan {plan.name} ({entries_text(plan)}) on {data}")
        worker = Worker(run_job(self.model, plan, data, bench, self.history), "run")
        worker.result.connect(self._run_done)
        self._start(worker, "starting run")
        return True

    @Slot(object)
    def _run_done(self, outcome: RunOutcome) -> None:
        self.log(describe(outcome))
        self.results.add_source(outcome.source)
        first = outcome.baseline_id
        second = outcome.run_id if outcome.run_id is not None else first
        self.utterances.load_runs(outcome.source, first, second)
        self.runCompleted.emit(outcome)

    def _show_pair(self, first: int, second: int) -> None:
        self.utterances.show_pair(first, second)
        self.tabs.setCurrentIndex(TAB_UTTERANCES)

    # --- jobs ------------------------------------------------------------------------------
    def _can_start(self) -> bool:
        if self.job is not None:
            self.report_error("a job is running; wait for it or cancel it first")
            return False
        return True

    def _start(self, worker: Worker, what: str) -> None:
        worker.progress.connect(self._job_progress)
        worker.failed.connect(self._job_failed)
        worker.cancelled.connect(self._job_cancelled)
        self.run_panel.busy(what)
        self.job = start_worker(worker, on_done=self._job_done)

    @Slot(int, int, str)
    def _job_progress(self, done: int, total: int, stage: str) -> None:
        self.run_panel.progress(done, total, stage)
        self.jobProgress.emit(done, total, stage)

    @Slot()
    def _job_cancelled(self) -> None:
        worker = self.job.worker if self.job is not None else None
        name, note = (worker.name, worker.cancel_note) if worker else ("job", "")
        self.log(f"{name} cancelled; {note or 'nothing was recorded for it'}", "warning")

    @Slot(str)
    def _job_failed(self, text: str) -> None:
        self.report_error(text)
        self.jobFailed.emit(text)

    @Slot(object)
    def _job_done(self, job: Job) -> None:
        if job is self.job:
            self.job = None
        self.run_panel.idle(
            "ready" if self.model else "open a model to start", self.model is not None
        )
        self.jobFinished.emit()

    def cancel_job(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.run_panel.stage.setText("cancelling…")
            self.run_panel.cancel_button.setEnabled(False)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.microphone.shutdown()
        if self.job is not None:
            self.job.cancel()
            self.job.wait()
        self.settings_panel.save()
        self.settings.sync()
        super().closeEvent(event)
