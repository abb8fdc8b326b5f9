"""The main window: open a model, edit its plan, run benchmarks in a worker, read the results."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
)

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.export.info import export_info
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.tree import ModuleTree, build_tree
from speechquant.core.quantization.validation import validate_plan

from .export_action import Exporter
from .job_slot import JobSlot
from .jobs import Loaded, RunOutcome, describe, load_job, run_job
from .language_control import LanguageControl
from .machine_dialog import MachineDialog, slot_starter
from .microphone_tab import MicrophoneTab
from .model_bar import ModelBar, model_info
from .paths import RememberedFolder, open_history
from .plan_editor import PlanEditor, entries_text
from .plan_panel import PlanPanel
from .results_view import ResultsView
from .run_context import ContextSource
from .run_panel import RunPanel
from .search_action import Analyzer
from .settings_panel import SettingsPanel, scrolled
from .utterances_view import UtterancesView
from .worker import Job, Worker

TAB_PLAN, TAB_RESULTS, TAB_UTTERANCES = range(3)


class MainWindow(QMainWindow):
    """``show_error_dialogs=False`` keeps errors in the log only and asks no questions (tests,
    screenshots)."""

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
        self._error_box: QMessageBox | None = None
        self._shown_results = False
        self.folder = RememberedFolder(self.settings)
        self.slot = JobSlot(self)

        self.plan_panel = PlanPanel()
        self.settings_panel = SettingsPanel(self.settings, self.folder)
        self.results = ResultsView(self.history, self.folder, confirm=show_error_dialogs)
        self.utterances = UtterancesView(self.history)
        self.run_panel = RunPanel()
        self.tree_model = self.plan_panel.model
        self.contexts = ContextSource(
            lambda: self.model, self.tree_model, self.settings_panel, self.history
        )
        self.plan_editor = PlanEditor(
            self.tree_model, self.settings_panel, self.folder, self, confirm=show_error_dialogs
        )

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plan_panel)
        split.addWidget(scrolled(self.settings_panel))
        split.setStretchFactor(0, 1)
        split.setSizes([1000, 340])
        self.tabs = QTabWidget()
        self.tabs.addTab(split, "Plan")
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.utterances, "Utterances")
        self.microphone = MicrophoneTab(self.slot, self.contexts, self.folder)
        self.microphone.message.connect(self.log)
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

        self.model_bar = ModelBar(self.settings, self.folder, self)
        self.model_bar.sourceRequested.connect(self.open_source)
        self.language = LanguageControl(self.settings, self.slot, self)
        self.language.add_to(self.model_bar)
        self.addToolBar(self.model_bar)
        self.recent_menu = self.model_bar.recent_menu
        self.exporter = Exporter(self.slot, self.contexts, self.folder, self)
        self.model_bar.addAction(self.exporter.action)
        self.analyzer = Analyzer(self.slot, self.contexts, self)
        self.tabs.addTab(self.analyzer.view, "Sensitivity")
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
        edit_menu = menus.addMenu("&Edit")
        edit_menu.addAction(self.plan_editor.undo_action)
        edit_menu.addAction(self.plan_editor.redo_action)
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
        self.cancel_action = run_menu.addAction("Cancel", QKeySequence("Esc"), self.cancel_job)
        self.cancel_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.cancel_action.setEnabled(False)  # Esc is only taken while a job runs
        self.slot.busyChanged.connect(self.cancel_action.setEnabled)
        run_menu.addSeparator()
        run_menu.addActions(self.analyzer.actions)
        help_menu = menus.addMenu("&Help")
        help_menu.addAction("About this machine…", self.show_machine)

    def show_machine(self) -> None:
        """Help ▸ About this machine: versions, CPU features, measured scheme speeds."""
        MachineDialog(slot_starter(self.slot), self).open()

    def _wire(self) -> None:
        panel = self.plan_panel
        for name, action in panel.preset_actions.items():
            action.triggered.connect(lambda _c=False, n=name: self.apply_preset(n))
        panel.load_action.triggered.connect(self.plan_editor.load_dialog)
        panel.save_action.triggered.connect(
            lambda: self.plan_editor.save_dialog(self.current_plan())
        )
        self.plan_editor.message.connect(self.log)
        self.plan_editor.failed.connect(self.report_error)
        self.tree_model.editRejected.connect(lambda text: self.log(text, "warning"))
        self.tree_model.entriesDropped.connect(
            lambda path, inner: self.log(
                f"{path} is now one block; removed the entries inside it: {', '.join(inner)}"
            )
        )
        self.settings_panel.changed.connect(self._settings_changed)
        self.settings_panel.message.connect(self.log)
        self.run_panel.run_button.clicked.connect(self.run_benchmark)
        self.run_panel.cancel_button.clicked.connect(self.cancel_job)
        self.results.compareRequested.connect(self._show_pair)
        self.results.notesChanged.connect(lambda _run: self.utterances.refresh_labels())
        self.results.message.connect(self.log)
        self.results.failed.connect(self.report_error)
        self.modelLoaded.connect(lambda _m: self.exporter.model_changed())
        self.modelLoaded.connect(self.analyzer.model_changed)
        self.language.message.connect(self.log)
        self.language.languageChanged.connect(self._show_info)  # and the analysis is stale:
        self.language.languageChanged.connect(self.analyzer.model_changed)
        self.analyzer.planFound.connect(self._load_found_plan)
        self.analyzer.view.coloursChanged.connect(self.tree_model.set_highlights)
        self.exporter.message.connect(self.log)
        self.exporter.failed.connect(self.report_error)
        self.analyzer.message.connect(self.log)
        self.analyzer.failed.connect(self.report_error)
        slot = self.slot
        slot.refused.connect(self.report_error)
        slot.started.connect(lambda what: self.run_panel.busy(what))
        slot.progress.connect(self._job_progress)
        slot.failed.connect(self._job_failed)
        slot.cancelled.connect(self._job_cancelled)
        slot.finished.connect(self._job_done)
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
        if not self.slot.can_start():
            return False
        self.model_bar.set_source(source)
        self.log(f"opening {source}")
        worker = Worker(load_job(source), "load")
        worker.result.connect(self._model_loaded)
        self.slot.start(worker, f"opening {source}")
        return True

    @Slot(object)
    def _model_loaded(self, loaded: Loaded) -> None:
        self.set_model(loaded.model, loaded.tree)
        self.model_bar.remember(loaded.model.source)

    def set_model(self, model: LoadedModel, tree: ModuleTree | None = None) -> None:
        """Show ``model`` (already loaded); the plan is kept where it fits the new model and
        what belonged to the previous model (comparison, charts, sensitivity) is cleared."""
        tree = tree if tree is not None else build_tree(model.mods)
        self.model = model
        plan = self.tree_model.plan
        try:
            validate_plan(plan, tree)
        except SpeechquantError:
            plan = Plan(settings=plan.settings, name="none")
        self.tree_model.set_tree(tree, plan)
        self.plan_panel.show_tree()
        self.plan_panel.set_export_info(export_info(model))
        self.language.model_changed(model)  # its remembered language is set before it shows
        self._model_tree = tree
        info = self._show_info(model)
        self.setWindowTitle(f"speechquant — {model.source}")
        self.model_bar.set_source(model.source)
        self.results.set_current_source(model.source)
        self.utterances.load_runs(model.source)
        self.run_panel.idle("ready", can_run=not self.slot.busy)
        self.log(f"opened {info}")
        self.modelLoaded.emit(model)

    def _show_info(self, model: LoadedModel) -> str:
        info = model_info(model, self._model_tree)
        self.model_label.setText(info)
        self.model_label.setToolTip(info)
        return info

    # --- plans -----------------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        return self.tree_model.plan

    @property
    def job(self) -> Job | None:
        """The running job of the window's one slot."""
        return self.slot.job

    def _settings_changed(self) -> None:
        try:
            self.plan_panel.set_quant_settings(
                self.settings_panel.quant_settings(self.plan.settings)
            )
        except SpeechquantError as exc:
            self.log(str(exc), "warning")

    def apply_preset(self, name: str) -> bool:
        return self.plan_editor.apply_preset(name)

    def load_plan_file(self, path: str) -> bool:
        return self.plan_editor.load_file(path)

    def current_plan(self) -> Plan:
        """A copy of the plan with the settings panel's quantization settings."""
        return self.contexts.current_plan()

    def save_plan_file(self, path: str) -> bool:
        return self.plan_editor.save_file(path, self.current_plan())

    # --- runs ------------------------------------------------------------------------------
    def run_benchmark(self) -> bool:
        """Baseline + current plan on the settings panel's dataset, in a worker."""
        if not self.slot.can_start():
            return False
        try:
            ctx = self.contexts.snapshot("running a benchmark")
        except SpeechquantError as exc:
            self.report_error(str(exc))
            return False
        self.log(f"run: plan {ctx.plan.name} ({entries_text(ctx.plan)}) on {ctx.data}")
        kept: list[str] = []
        job = run_job(ctx.model, ctx.plan, ctx.data, ctx.bench, ctx.history, kept, ctx.cluster)
        worker = Worker(job, "run", kept)
        worker.result.connect(self._run_done)
        self.slot.start(worker, "starting run")
        return True

    @Slot(object)
    def _run_done(self, outcome: RunOutcome) -> None:
        self.log(describe(outcome))
        self._shown_results = True
        self.results.add_source(outcome.source)
        first = outcome.baseline_id
        second = outcome.run_id if outcome.run_id is not None else first
        self.utterances.load_runs(outcome.source, first, second)
        self.runCompleted.emit(outcome)

    def _load_found_plan(self, plan: Plan) -> None:
        """A suggested plan replaces the edited one (undo brings the edits back)."""
        try:
            self.tree_model.set_plan(plan)
        except SpeechquantError as exc:
            self.report_error(f"the plan found does not fit the model: {exc}")
            return
        self.settings_panel.set_quant_settings(plan.settings)

    def _show_pair(self, first: int, second: int) -> None:
        self.utterances.show_pair(first, second)
        self.tabs.setCurrentIndex(TAB_UTTERANCES)

    # --- jobs ------------------------------------------------------------------------------
    @Slot(int, int, str)
    def _job_progress(self, done: int, total: int, stage: str) -> None:
        self.run_panel.progress(done, total, stage)
        self.jobProgress.emit(done, total, stage)

    @Slot(str, str)
    def _job_cancelled(self, name: str, note: str) -> None:
        self.log(f"{name} cancelled; {note}", "warning")

    @Slot(str)
    def _job_failed(self, text: str) -> None:
        self.report_error(text)
        self.jobFailed.emit(text)

    @Slot(str)
    def _job_done(self, name: str) -> None:
        if name == "load":  # a failed load must not leave its path in the Model field
            self.model_bar.set_source(self.model.source if self.model else "")
        if name in ("run", "sensitivity", "search") and not self._shown_results:
            self.results.refresh()  # what a cancelled or failed job stored shows at once
        self._shown_results = False
        self.run_panel.idle(
            "ready" if self.model else "open a model to start", self.model is not None
        )
        self.jobFinished.emit()

    def cancel_job(self) -> None:
        if self.slot.cancel():
            self.run_panel.stage.setText("cancelling…")
            self.run_panel.cancel_button.setEnabled(False)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.slot.busy and self.show_error_dialogs:
            answer = QMessageBox.question(
                self,
                "speechquant",
                f"{self.slot.what or 'a job'} is running. Cancel it and quit?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.microphone.shutdown()
        self.slot.cancel()
        self.slot.wait()
        self.settings_panel.save()
        self.settings.sync()
        super().closeEvent(event)
