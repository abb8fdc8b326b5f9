"""The long jobs the window runs in a worker thread, as plain functions over core (no Qt)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechquant.core.cluster.session import cluster_executor
from speechquant.core.cluster.settings import ClusterSettings
from speechquant.core.data.datasets import Dataset, open_dataset
from speechquant.core.errors import CalibrationError, SpeechquantError
from speechquant.core.evaluation.bench import BenchSettings, state_dict_bytes
from speechquant.core.evaluation.experiment import (
    needs_calibration,
    quantize_model,
    run_baseline,
    run_experiment,
)
from speechquant.core.evaluation.history import HistoryStore, new_group_id
from speechquant.core.evaluation.runs import run_label
from speechquant.core.export.writer import export_model
from speechquant.core.formatting import format_bytes
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.tree import ModuleTree, build_tree
from speechquant.core.sources import open_model

from .preload import wait_preimport


@dataclass
class Loaded:
    model: LoadedModel
    tree: ModuleTree


def load_job(source: str) -> Any:
    """Open ``source`` and build its module tree."""

    def job(progress: ProgressCallback, cancel: CancelToken) -> Loaded:
        wait_preimport()  # never import speechbrain alongside the startup pre-import
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
    baseline_name: str | None = None
    """The user's name for a reused (cached) float baseline, if it has one."""


def run_job(
    model: LoadedModel,
    plan: Plan,
    data: str,
    settings: BenchSettings,
    history: HistoryStore,
    kept: list[str] | None = None,
    cluster: ClusterSettings | None = None,
) -> Any:
    """Float baseline (reused from history when cached) then ``plan``, stored as one group.

    A float plan re-measures the baseline instead. ``plan`` must be the caller's own copy.
    ``kept`` gets a line per run stored (what a cancel leaves in the history). ``cluster``:
    transcribe on that Ray cluster (the Cluster setting), as ``speechquant --cluster`` does.
    """

    def job(progress: ProgressCallback, cancel: CancelToken) -> RunOutcome:
        dataset = open_dataset(data, progress=progress, cancel=cancel)
        group = new_group_id()
        quantized = not plan.is_float()
        with cluster_executor(cluster, model, open_model) as executor:
            base = run_baseline(
                model,
                dataset,
                settings,
                history,
                group_id=group,
                reuse=quantized,
                progress=progress,
                cancel=cancel,
                executor=executor,
            )
            outcome = RunOutcome(model.source, base.result, base.run_id, base.baseline_cached)
            if base.baseline_cached and base.run_id is not None:
                outcome.baseline_name = history.notes(base.run_id).name
            if kept is not None and not base.baseline_cached and base.run_id is not None:
                kept.append(f"the float baseline #{base.run_id}")
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
                executor=executor,
            )
        experiment.model = None  # the quantized variant is not needed after the run
        outcome.result = experiment.result
        outcome.run_id = experiment.run_id
        outcome.calibration_ids = experiment.calibration_ids
        return outcome

    return job


def ratio_text(ratio: float | None, more: str, less: str) -> str:
    """``2.5`` -> ``"2.50× faster"``; ``0.4`` -> ``"2.50× slower"`` (never "0.40× faster")."""
    if ratio is None or ratio != ratio or ratio <= 0:
        return f"{more}: -"
    if ratio >= 1:
        return f"{ratio:.2f}× {more}"
    return f"{1 / ratio:.2f}× {less}"


def _label(result: dict[str, Any], run_id: int | None, name: str | None = None) -> str:
    """:func:`run_label` of a result just measured; a run not stored has its plan only."""
    if run_id is None:
        return str((result.get("plan") or {}).get("name") or "float32")
    return run_label({**result, "history": {"id": run_id, "name": name}})


def describe(outcome: RunOutcome) -> str:
    """One log line: the plan's figures against the float baseline (an export's: its plan)."""
    base = outcome.baseline
    cached = " (cached)" if outcome.baseline_cached else ""
    base_label = _label(base, outcome.baseline_id, outcome.baseline_name)
    text = (
        f"{base_label}{cached}: WER {base['wer']:.2f} %, RTF {base['rtf']:.3f}, "
        f"{format_bytes(base['model_bytes'])}"
    )
    result = outcome.result
    if result is None:
        return text
    comparison = result.get("comparison") or {}
    speedup = comparison.get("speedup") if comparison.get("paired") else None
    speed = (
        ratio_text(speedup, "faster", "slower")
        if speedup is not None
        else "speed-up: not timed together with a float run"
    )
    shrink = base["model_bytes"] / result["model_bytes"] if result["model_bytes"] else None
    return (
        f"{_label(result, outcome.run_id)}: WER {result['wer']:.2f} % "
        f"({result['wer'] - base['wer']:+.2f}), "
        f"RTF {result['rtf']:.3f} ({speed}), "
        f"{format_bytes(result['model_bytes'])} ({ratio_text(shrink, 'smaller', 'larger')}) "
        f"— against {text}"
    )


@dataclass
class ExportOutcome:
    """An export folder written: sizes, calibration, and the run whose metrics it carries."""

    source: str
    plan_name: str
    folder: Path
    calibration_ids: list[str]
    disk_bytes: int
    float_bytes: int
    metrics_run_id: int | None = None
    metrics_run_label: str | None = None
    model: LoadedModel | None = None
    """The quantized variant that was written (kept for callers that check it)."""


def latest_matching_run(
    history: HistoryStore,
    source: str,
    plan: Plan,
    calibration_ids: list[str],
    language: str | None = None,
) -> tuple[int, dict[str, Any], str] | None:
    """The newest stored run of exactly this plan on ``source`` in ``language`` (a multilingual
    Whisper's) that calibrated on the same utterances (so its figures describe the exported
    weights), as (id, result, label)."""
    wanted = plan.to_dict()
    try:
        for run in history.list_runs(source=source):
            if run.plan_name != plan.name:
                continue
            result = history.get_run(run.id)
            if result.get("language") != language:
                continue
            meta = result.pop("history", {})
            stored = result.get("plan") or {}
            if stored.get("entries") != wanted["entries"] or (
                stored.get("settings") != wanted["settings"]
            ):
                continue
            used = (meta.get("settings") or {}).get("calibration_ids") or []
            if list(used) == list(calibration_ids):
                return run.id, result, run_label(run)
    except SpeechquantError:
        return None  # metrics are a nice-to-have; an unusable history must not stop the export
    return None


def export_job(
    model: LoadedModel,
    plan: Plan,
    out: str | Path,
    data: str,
    settings: BenchSettings,
    history: HistoryStore | None,
    overwrite: bool = False,
) -> Any:
    """Quantize ``model`` by ``plan`` (calibrating static entries) and write an export folder.

    Calibration comes from ``settings.calib`` or else from ``data`` outside the utterances a
    benchmark with ``settings`` evaluates, as :func:`run_experiment` picks them, so the export
    matches the plan's latest run, whose metrics it then records. ``plan`` must be the caller's
    own copy.
    """
    target = Path(out).expanduser()

    def job(progress: ProgressCallback, cancel: CancelToken) -> ExportOutcome:
        evaluated: Dataset | None = None
        if needs_calibration(plan) and (settings.calib is None or settings.calib == data):
            if not data:
                raise CalibrationError(
                    "the plan has static entries, which need calibration utterances; choose a "
                    "dataset or calibration data in the Data settings"
                )
            dataset = open_dataset(data, progress=progress, cancel=cancel)
            evaluated = dataset.first(settings.limit) if settings.limit else dataset
        variant, calib_ids = quantize_model(model, plan, evaluated, settings, progress, cancel)
        found = (
            latest_matching_run(history, model.source, plan, calib_ids, model.language)
            if history
            else None
        )
        check(cancel)
        fresh = not target.exists()
        folder = export_model(
            variant,
            target,
            calibration_ids=calib_ids,
            metrics=found[1] if found else None,
            progress=progress,
            overwrite=overwrite,
        )
        if cancel.cancelled and fresh:  # cancelled while writing: leave nothing behind
            shutil.rmtree(folder, ignore_errors=True)
            check(cancel)
        disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        return ExportOutcome(
            source=model.source,
            plan_name=plan.name,
            folder=folder,
            calibration_ids=calib_ids,
            disk_bytes=disk,
            float_bytes=state_dict_bytes(model.mods),
            metrics_run_id=found[0] if found else None,
            metrics_run_label=found[2] if found else None,
            model=variant,
        )

    return job


def describe_export(outcome: ExportOutcome) -> str:
    """One log line: where, how big against the float state_dict, calibration, metrics."""
    disk, base = outcome.disk_bytes, outcome.float_bytes
    text = (
        f"exported {outcome.source} [{outcome.plan_name}] to {outcome.folder}: "
        f"{format_bytes(disk)} on disk, float state_dict {format_bytes(base)}"
        + (f" ({ratio_text(base / disk, 'smaller', 'larger')})" if disk else "")
    )
    ids = outcome.calibration_ids
    if ids:
        shown = ", ".join(ids[:5]) + (f", … ({len(ids)} in all)" if len(ids) > 5 else "")
        text += f"; calibrated on {shown}"
    if outcome.metrics_run_id is not None:
        label = outcome.metrics_run_label or f"#{outcome.metrics_run_id}"
        text += f"; metrics of run {label} included"
    return text
