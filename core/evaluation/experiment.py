"""Experiments: quantize -> calibrate -> benchmark paired with the float model, recorded in history.

The CLI and the GUI both run experiments through :func:`run_experiment` and :func:`run_compare`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from speechquant.core.data.datasets import (
    Dataset,
    SkippedItem,
    iter_loaded,
    open_calibration,
    open_dataset,
    split_calibration,
)
from speechquant.core.errors import CalibrationError, DataError, SpeechquantWarning
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.executor import LOCAL, PlanRun, SessionExecutor
from speechquant.core.evaluation.history import HistoryStore, make_cache_key, new_group_id
from speechquant.core.evaluation.results import BenchResult, compare, comparison_rows
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import get_scheme


@dataclass
class ExperimentResult:
    """A benchmark result, the run id and group it was stored under, the calibration ids used."""

    bench: BenchResult
    run_id: int | None
    calibration_ids: list[str] = field(default_factory=list)
    baseline_cached: bool = False
    model: LoadedModel | None = None
    group_id: str | None = None

    @property
    def result(self) -> dict[str, Any]:
        """The ``bench --json`` object."""
        return self.bench.to_json()


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


def calibration_waves(
    model: LoadedModel,
    plan: Plan,
    evaluated: Dataset | None,
    settings: BenchSettings,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[list[torch.Tensor], list[str]]:
    """The windows ``plan`` calibrates on and their utterance ids (none without static entries),
    from utterances outside ``evaluated``."""
    waves: list[torch.Tensor] = []
    ids: list[str] = []
    if needs_calibration(plan):
        calib = calibration_set(evaluated, settings, progress, cancel)
        for utterance, wav in iter_loaded(calib, model.sample_rate, cancel=cancel):
            try:
                model.check_length(wav)
            except DataError as exc:
                calib.skipped.append(SkippedItem(utterance.id, str(exc)))
                continue
            waves += [wav[w.start : w.end] for w in model.windows(wav)]
            ids.append(utterance.id)
        for item in calib.skipped:
            warnings.warn(
                f"calibration item {item.id} skipped: {item.reason}",
                SpeechquantWarning,
                stacklevel=3,
            )
    return waves, ids


def quantize_model(
    model: LoadedModel,
    plan: Plan,
    evaluated: Dataset | None,
    settings: BenchSettings,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[LoadedModel, list[str]]:
    """Apply ``plan``, calibrating static entries on utterances outside ``evaluated``."""
    waves, ids = calibration_waves(model, plan, evaluated, settings, progress, cancel)
    variant = apply_plan(model, plan, waves, progress=progress, cancel=cancel)
    return variant, ids


def _plan_run(
    model: LoadedModel,
    plan: Plan,
    waves: list[torch.Tensor],
    ids: list[str],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> PlanRun:
    def build() -> LoadedModel:
        return apply_plan(model, plan, waves, progress=progress, cancel=cancel)

    return PlanRun(plan, build, ids, waves)


def model_key(model: LoadedModel) -> dict[str, Any]:
    """The model's part of a cache key: its source, and its prompt language where it has one.

    A model without a language token keeps the keys it always had.
    """
    language = model.language
    return {"source": model.source, **({"language": language} if language else {})}


def baseline_key(
    model: LoadedModel,
    dataset: Dataset,
    settings: BenchSettings,
    executor: SessionExecutor = LOCAL,
) -> str:
    data = dataset.first(settings.limit) if settings.limit is not None else dataset
    return make_cache_key(
        **model_key(model),
        data=dataset.source,
        ids=dataset.ids[: settings.limit] if settings.limit is not None else dataset.ids,
        warmup=settings.warmup,
        repeats=settings.repeats,
        threads=settings.threads or torch.get_num_threads(),
        normalizer=settings.normalizer,
        encoder_rtf=settings.encoder_rtf,
        torch=torch.__version__,
        **executor.key_parts(data),
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
    executor: SessionExecutor | None = None,
) -> ExperimentResult:
    """The float model's figures, reused from history when the same run was made before.

    A reused baseline supplies WER and transcripts; its timings never pair with a new run's.
    ``executor`` measures it (default: this process).
    """
    executor = executor or LOCAL
    key = baseline_key(model, dataset, settings, executor)
    if history is not None and reuse:
        cached = history.find_cached(key)
        if cached is not None:
            return ExperimentResult(
                cached.result,
                cached.meta.id,
                baseline_cached=True,
                model=model,
                group_id=cached.meta.group_id or group_id,
            )
    float_run = PlanRun(None, lambda: model)
    result = executor.measure([float_run], dataset, settings, progress, cancel)[0]
    run_id = None
    if history is not None:
        run_id = history.add_run(
            result.to_json(),
            kind="baseline",
            settings={**settings.to_dict(), "data": dataset.source},
            group_id=group_id,
            cache_key=key,
        )
    return ExperimentResult(result, run_id, model=model, group_id=group_id)


def _store_session(
    model: LoadedModel,
    dataset: Dataset,
    settings: BenchSettings,
    history: HistoryStore | None,
    results: list[BenchResult],
    calibration: list[list[str]],
    group_id: str | None,
    kind: str,
    store_float: bool = True,
    executor: SessionExecutor = LOCAL,
) -> list[ExperimentResult]:
    """Compare each plan of one timing session with its float model; store them (and the float
    model's result when ``store_float``); baseline first."""
    float_result, plan_results = results[0], results[1:]
    for result in plan_results:
        result.comparison = compare(
            float_result, result, timing_base=float_result,
            normalizer=settings.normalizer,
        )  # fmt: skip
    stored = []
    for i, result in enumerate(results):
        run_id = None
        if history is not None and (i or store_float):
            ids = calibration[i - 1] if i else []
            run_id = history.add_run(
                result.to_json(),
                kind="baseline" if i == 0 else kind,
                settings={**settings.to_dict(), "data": dataset.source, "calibration_ids": ids},
                group_id=group_id,
                cache_key=baseline_key(model, dataset, settings, executor) if i == 0 else None,
            )
        ids = calibration[i - 1] if i else []
        stored.append(ExperimentResult(result, run_id, ids, group_id=group_id))
    stored[0].model = model
    return stored


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
    executor: SessionExecutor | None = None,
) -> ExperimentResult:
    """Quantize ``model`` by ``plan``, calibrate, benchmark it paired with the float model, record it.

    The result's ``comparison`` holds ΔWER and the speed-ups against the float model timed in
    the same session (its ``baseline_started_at``); only the plan's result is stored.
    ``executor`` runs the session (default: this process); ``model`` of the result is the variant
    when it was built here.
    """
    executor = executor or LOCAL
    evaluated = dataset.first(settings.limit) if settings.limit is not None else dataset
    waves, calib_ids = calibration_waves(model, plan, evaluated, settings, progress, cancel)
    run = _plan_run(model, plan, waves, calib_ids, progress, cancel)
    results = executor.measure(
        [PlanRun(None, lambda: model), run], evaluated, settings, progress, cancel
    )
    group = group_id or new_group_id()
    stored = _store_session(
        model, dataset, settings, history, results, [calib_ids], group, kind,
        store_float=False, executor=executor,
    )  # fmt: skip
    experiment = stored[1]
    experiment.model = run.built
    return experiment


def run_compare(
    model: LoadedModel,
    plans: Sequence[Plan],
    dataset: Dataset,
    settings: BenchSettings,
    history: HistoryStore | None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    executor: SessionExecutor | None = None,
) -> list[ExperimentResult]:
    """The float model and each plan timed together in one session, stored as one compare group.

    All variants are built first and kept in memory while they are timed utterance by utterance
    (``executor``: where the session runs, default this process). Plans that calibrate share
    one load of the calibration utterances.
    """
    executor = executor or LOCAL
    evaluated = dataset.first(settings.limit) if settings.limit is not None else dataset
    runs = [PlanRun(None, lambda: model)]
    loaded: tuple[list[torch.Tensor], list[str]] | None = None
    for plan in plans:
        waves: list[torch.Tensor] = []
        ids: list[str] = []
        if needs_calibration(plan):
            if loaded is None:
                loaded = calibration_waves(model, plan, evaluated, settings, progress, cancel)
            waves, ids = loaded
        runs.append(_plan_run(model, plan, waves, list(ids), progress, cancel))
    results = executor.measure(runs, evaluated, settings, progress, cancel)
    return _store_session(
        model, dataset, settings, history, results, [r.calibration_ids for r in runs[1:]],
        new_group_id(), "compare", executor=executor,
    )  # fmt: skip


__all__ = [
    "ExperimentResult",
    "baseline_key",
    "calibration_set",
    "calibration_waves",
    "comparison_rows",
    "needs_calibration",
    "quantize_model",
    "run_baseline",
    "run_compare",
    "run_experiment",
]
