"""Where one timing session runs: the float model and plans measured together, here or elsewhere.

A :class:`PlanRun` names one model of a session: its plan (``None`` for the float model), the
calibration utterances a static plan was calibrated on, and how to build the variant in this
process. An executor's :meth:`~SessionExecutor.measure` is the equivalent of
:func:`~.bench.paired_benchmark` for ``[float, plan1, ...]``: one result per run, the float model
first, all timed in one paired session. :class:`LocalExecutor` is exactly that, in this process;
``speechquant.core.cluster`` has one that transcribes shards of the utterances on Ray workers and
times the session on one node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from speechquant.core.data.datasets import Dataset
from speechquant.core.evaluation.bench import BenchSettings, paired_benchmark
from speechquant.core.evaluation.results import BenchResult
from speechquant.core.machine import MachineInfo, this_machine
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback
from speechquant.core.quantization.plan import Plan


@dataclass
class PlanRun:
    """One model of a timing session: ``plan`` (None: the float model) and how to build it here
    (``build`` None: only announced to :meth:`SessionExecutor.prefetch`)."""

    plan: Plan | None
    build: Callable[[], LoadedModel] | None
    calibration_ids: list[str] = field(default_factory=list)
    calibration_waves: Sequence[torch.Tensor] = ()
    built: LoadedModel | None = field(default=None, repr=False)
    """The model :meth:`model` built (None until an executor needed it here)."""

    def model(self) -> LoadedModel:
        """The model, built on first use."""
        if self.built is None:
            if self.build is None:
                raise ValueError(f"run {self.name} has no build; it was only announced")
            self.built = self.build()
        return self.built

    @property
    def name(self) -> str:
        return "float" if self.plan is None else self.plan.name


class SessionExecutor(Protocol):
    """Measures the float model and plans in one timing session (experiments and the plan
    measurer go through one)."""

    queues_ahead: bool
    """Whether :meth:`prefetch` starts on runs (else callers need not announce them)."""

    def key_parts(self, dataset: Dataset) -> dict[str, Any]:
        """What, beyond source, data and settings, determines a result (added to cache keys)."""
        ...

    def timing_machine(self, threads: int | None = None) -> MachineInfo:
        """The machine whose timings :meth:`measure` returns."""
        ...

    def prefetch(self, runs: Sequence[PlanRun], dataset: Dataset, settings: BenchSettings) -> None:
        """Runs that :meth:`measure` will be asked for soon (an executor may start on them)."""
        ...

    def measure(
        self,
        runs: Sequence[PlanRun],
        dataset: Dataset,
        settings: BenchSettings,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[BenchResult]:
        """One result per run (the float model first), all timed in one paired session."""
        ...


class LocalExecutor:
    """Everything in this process: the variants built, then :func:`~.bench.paired_benchmark`."""

    queues_ahead = False

    def key_parts(self, dataset: Dataset) -> dict[str, Any]:
        return {}

    def timing_machine(self, threads: int | None = None) -> MachineInfo:
        return this_machine(threads)

    def prefetch(self, runs: Sequence[PlanRun], dataset: Dataset, settings: BenchSettings) -> None:
        return None

    def measure(
        self,
        runs: Sequence[PlanRun],
        dataset: Dataset,
        settings: BenchSettings,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[BenchResult]:
        """Build each run's model, then time them all together in this process (paired)."""
        models = [run.model() for run in runs]
        return paired_benchmark(models, dataset, settings, progress=progress, cancel=cancel)


LOCAL = LocalExecutor()
"""The executor used when none is given."""
