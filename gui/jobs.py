"""The long jobs the window runs in a worker thread, as plain functions over core (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from speechquant.core.bench import BenchSettings
from speechquant.core.datasets import open_dataset
from speechquant.core.experiment import run_baseline, run_experiment
from speechquant.core.history import HistoryStore, new_group_id
from speechquant.core.models import LoadedModel, open_model
from speechquant.core.plan import Plan
from speechquant.core.progress import CancelToken, ProgressCallback, check
from speechquant.core.tree import ModuleTree, build_tree


@dataclass
class Loaded:
    model: LoadedModel
    tree: ModuleTree


def load_job(source: str) -> Any:
    """Open ``source`` and build its module tree."""

    def job(progress: ProgressCallback, cancel: CancelToken) -> Loaded:
        model = open_model(source, progress=progress)
        check(cancel)
        return Loaded(model, build_tree(model.mods))

    return job


@dataclass
class RunOutcome:
    """What one Run gives: the float baseline (maybe cached) and the plan's result."""

    source: str
    baseline: dict[str, Any]
    baseline_id: int | None
    baseline_cached: bool
    result: dict[str, Any] | None = None
    run_id: int | None = None
    calibration_ids: list[str] = field(default_factory=list)


def run_job(
    model: LoadedModel,
    plan: Plan,
    data: str,
    settings: BenchSettings,
    history: HistoryStore,
) -> Any:
    """Float baseline (reused from history when cached) then ``plan``, stored as one group.

    A float plan re-measures the baseline instead. ``plan`` must be the caller's own copy.
    """

    def job(progress: ProgressCallback, cancel: CancelToken) -> RunOutcome:
        dataset = open_dataset(data, progress=progress, cancel=cancel)
        group = new_group_id()
        quantized = bool(plan.entries) and not plan.is_float()
        base = run_baseline(
            model,
            dataset,
            settings,
            history,
            group_id=group,
            reuse=quantized,
            progress=progress,
            cancel=cancel,
        )
        outcome = RunOutcome(model.source, base.result, base.run_id, base.baseline_cached)
        if not quantized:
            return outcome
        experiment = run_experiment(
            model,
            plan,
            dataset,
            settings,
            history,
            group_id=base.group_id,
            kind="compare",
            progress=progress,
            cancel=cancel,
        )
        experiment.model = None  # the quantized variant is not needed after the run
        outcome.result = experiment.result
        outcome.run_id = experiment.run_id
        outcome.calibration_ids = experiment.calibration_ids
        return outcome

    return job


def describe(outcome: RunOutcome) -> str:
    """One log line: the plan's figures against the float baseline."""
    base = outcome.baseline
    cached = " (cached)" if outcome.baseline_cached else ""
    text = (
        f"float32 #{outcome.baseline_id}{cached}: WER {base['wer']:.2f} %, RTF {base['rtf']:.3f}, "
        f"{base['model_bytes'] / 1e6:.2f} MB"
    )
    result = outcome.result
    if result is None:
        return text
    name = (result.get("plan") or {}).get("name", "plan")
    speedup = base["rtf"] / result["rtf"] if result["rtf"] else float("nan")
    return (
        f"{name} #{outcome.run_id}: WER {result['wer']:.2f} % ({result['wer'] - base['wer']:+.2f}), "
        f"RTF {result['rtf']:.3f} ({speedup:.2f}× faster), {result['model_bytes'] / 1e6:.2f} MB "
        f"({base['model_bytes'] / result['model_bytes']:.2f}× smaller) — against {text}"
    )
