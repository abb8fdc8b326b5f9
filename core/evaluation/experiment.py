"""Experiments: quantize -> calibrate -> benchmark against a cached float baseline, recorded in history.

The CLI and the GUI both run experiments through :func:`run_experiment` and :func:`run_compare`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from speechquant.core.data.datasets import (
    Dataset,
    iter_loaded,
    open_calibration,
    open_dataset,
    split_calibration,
)
from speechquant.core.errors import CalibrationError
from speechquant.core.evaluation.bench import BenchSettings, benchmark
from speechquant.core.evaluation.history import HistoryStore, make_cache_key, new_group_id
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import get_scheme


@dataclass
class ExperimentResult:
    """A benchmark result, the run id and group it was stored under, the calibration ids used."""

    result: dict[str, Any]
    run_id: int | None
    calibration_ids: list[str] = field(default_factory=list)
    baseline_cached: bool = False
    model: LoadedModel | None = None
    group_id: str | None = None


def needs_calibration(plan: Plan) -> bool:
    return any(get_scheme(s).needs_calibration for s in plan.entries.values())


def calibration_set(
    evaluated: Dataset | None,
    settings: BenchSettings,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Dataset:
    """``calib_n`` calibration utterances, disjoint from ``evaluated`` when they share a DATA."""
    if evaluated is not None:
        return open_calibration(settings.calib, settings.calib_n, evaluated, progress, cancel)
    if settings.calib is None:
        raise CalibrationError(
            "the plan has static entries, which need calibration utterances; give calibration data"
        )
    return split_calibration(
        open_dataset(settings.calib, progress=progress, cancel=cancel), settings.calib_n
    )


def quantize_model(
    model: LoadedModel,
    plan: Plan,
    evaluated: Dataset | None,
    settings: BenchSettings,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[LoadedModel, list[str]]:
    """Apply ``plan``, calibrating static entries on utterances outside ``evaluated``."""
    waves: list[torch.Tensor] = []
    ids: list[str] = []
    if needs_calibration(plan):
        calib = calibration_set(evaluated, settings, progress, cancel)
        for utterance, wav in iter_loaded(calib, model.sample_rate, cancel=cancel):
            waves.append(wav)
            ids.append(utterance.id)
    variant = apply_plan(model, plan, waves, progress=progress, cancel=cancel)
    return variant, ids


def baseline_key(model: LoadedModel, dataset: Dataset, settings: BenchSettings) -> str:
    return make_cache_key(
        source=model.source,
        data=dataset.source,
        ids=dataset.ids[: settings.limit] if settings.limit else dataset.ids,
        warmup=settings.warmup,
        repeats=settings.repeats,
        threads=settings.threads or torch.get_num_threads(),
        normalizer=settings.normalizer,
        encoder_rtf=settings.encoder_rtf,
        torch=torch.__version__,
    )


def run_baseline(
    model: LoadedModel,
    dataset: Dataset,
    settings: BenchSettings,
    history: HistoryStore | None,
    *,
    group_id: str | None = None,
    reuse: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ExperimentResult:
    """The float model's figures, reused from history when the same run was made before."""
    key = baseline_key(model, dataset, settings)
    if history is not None and reuse:
        cached = history.find_baseline(key)
        if cached is not None:
            meta = cached.pop("history", {})
            return ExperimentResult(
                cached,
                meta.get("id"),
                baseline_cached=True,
                model=model,
                group_id=meta.get("group_id") or group_id,
            )
    result = benchmark(model, dataset, settings, progress=progress, cancel=cancel)
    run_id = None
    if history is not None:
        run_id = history.add_run(
            result,
            kind="baseline",
            settings={**settings.to_dict(), "data": dataset.source},
            group_id=group_id,
            cache_key=key,
        )
    return ExperimentResult(result, run_id, model=model, group_id=group_id)


def run_experiment(
    model: LoadedModel,
    plan: Plan,
    dataset: Dataset,
    settings: BenchSettings,
    history: HistoryStore | None,
    *,
    group_id: str | None = None,
    kind: str = "bench",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ExperimentResult:
    """Quantize ``model`` by ``plan``, calibrate, benchmark and record the run."""
    evaluated = dataset.first(settings.limit) if settings.limit else dataset
    variant, calib_ids = quantize_model(model, plan, evaluated, settings, progress, cancel)
    result = benchmark(variant, evaluated, settings, progress=progress, cancel=cancel)
    run_id = None
    if history is not None:
        run_id = history.add_run(
            result,
            kind=kind,
            settings={**settings.to_dict(), "data": dataset.source, "calibration_ids": calib_ids},
            group_id=group_id,
        )
    return ExperimentResult(result, run_id, calib_ids, model=variant, group_id=group_id)


def run_compare(
    model: LoadedModel,
    plans: Sequence[Plan],
    dataset: Dataset,
    settings: BenchSettings,
    history: HistoryStore | None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[ExperimentResult]:
    """The float baseline followed by each plan, grouped in history as one compare run."""
    group = new_group_id()
    results = [
        run_baseline(
            model, dataset, settings, history, group_id=group, progress=progress, cancel=cancel
        )
    ]
    for plan in plans:
        experiment = run_experiment(
            model,
            plan,
            dataset,
            settings,
            history,
            group_id=group,
            kind="compare",
            progress=progress,
            cancel=cancel,
        )
        experiment.model = None
        results.append(experiment)
    return results


def comparison_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per result: WER, ΔWER, RTF, speed-up and size ratio against the first (the baseline)."""
    base = results[0]
    rows = []
    for result in results:
        plan = result.get("plan")
        rows.append(
            {
                "name": plan["name"] if plan else "float32",
                "wer": result["wer"],
                "delta_wer": result["wer"] - base["wer"],
                "rtf": result["rtf"],
                "rtf_encoder": result["rtf_encoder"],
                "speedup": base["rtf"] / result["rtf"] if result["rtf"] else float("nan"),
                "encoder_speedup": (
                    base["rtf_encoder"] / result["rtf_encoder"]
                    if result.get("rtf_encoder") and base.get("rtf_encoder")
                    else None
                ),
                "model_bytes": result["model_bytes"],
                "size_ratio": base["model_bytes"] / result["model_bytes"],
            }
        )
    return rows


def format_comparison(results: Sequence[dict[str, Any]]) -> str:
    header = f"{'model':<16}{'WER %':>8}{'ΔWER':>8}{'RTF':>9}{'speed-up':>10}{'enc RTF':>9}{'enc x':>7}{'size MB':>9}{'size x':>8}"
    lines = [header, "-" * len(header)]
    for row in comparison_rows(results):
        enc = row["rtf_encoder"]
        enc_x = row["encoder_speedup"]
        lines.append(
            f"{row['name']:<16}{row['wer']:>8.2f}{row['delta_wer']:>+8.2f}{row['rtf']:>9.4f}"
            f"{row['speedup']:>9.2f}x{(f'{enc:.4f}' if enc is not None else '-'):>9}"
            f"{(f'{enc_x:.2f}x' if enc_x is not None else '-'):>7}"
            f"{row['model_bytes'] / 1e6:>9.1f}{row['size_ratio']:>7.2f}x"
        )
    return "\n".join(lines)
