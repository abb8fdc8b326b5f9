"""What a job runs on, taken in one snapshot with its precondition checks in one place.

Features (runs, export, analysis, the Microphone tab) ask :class:`ContextSource` for a
:class:`RunContext` instead of reading the window's widgets; a failed check is one
:class:`ContextError` line that names what to set in the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from speechquant.core.cluster.settings import ClusterSettings
from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.settings import QuantSettings

from .paths import data_problem
from .settings_panel import SettingsPanel
from .tree_model import ModuleTreeModel


class ContextError(SpeechquantError):
    """A job cannot start: the message says what to open or set."""


@dataclass(frozen=True)
class RunContext:
    """A consistent snapshot: later edits in the window do not reach a job already started.

    ``plan`` is a private copy carrying the settings panel's quantization settings; ``cluster``
    is the Cluster setting (None: this process).
    """

    model: LoadedModel
    plan: Plan
    data: str
    bench: BenchSettings
    quant: QuantSettings
    history: HistoryStore
    cluster: ClusterSettings | None = None


class ContextSource:
    """Builds :class:`RunContext` snapshots from the window's model, plan and settings."""

    def __init__(
        self,
        model: Callable[[], LoadedModel | None],
        tree_model: ModuleTreeModel,
        settings: SettingsPanel,
        history: HistoryStore,
    ) -> None:
        self._model = model
        self.tree_model = tree_model
        self.settings = settings
        self.history = history

    @property
    def model(self) -> LoadedModel | None:
        return self._model()

    def current_plan(self) -> Plan:
        """A copy of the edited plan with the settings panel's quantization settings."""
        plan = self.tree_model.plan
        quant = self.settings.quant_settings(plan.settings)
        return Plan(entries=dict(plan.entries), settings=quant, name=plan.name)

    def snapshot(self, what: str, need_data: bool = True, float_model: bool = False) -> RunContext:
        """The context for ``what`` (e.g. ``"running a benchmark"``); raises :class:`ContextError`
        (or core's error for a setting it rejects).

        ``float_model`` refuses an opened export (analysis and export need the float model).
        """
        model = self._model()
        if model is None:
            raise ContextError(f"open a model before {what}")
        if float_model and model.plan is not None:
            raise ContextError(
                f"{model.source} is already quantized (an export); open the float model before "
                f"{what}"
            )
        data = self.settings.dataset_spec()
        if need_data:
            problem = data_problem(data)
            if problem:
                raise ContextError(problem)
        if self.settings.calib.problem:
            raise ContextError(f"calibration data: {self.settings.calib.problem}")
        bench = self.settings.bench_settings()
        cluster = self.settings.cluster_settings()
        plan = self.current_plan()
        return RunContext(model, plan, data, bench, plan.settings, self.history, cluster)
