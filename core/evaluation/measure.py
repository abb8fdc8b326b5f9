"""Measure plans on one fixed set of utterances against its float baseline, cached in the run history.

:class:`PlanMeasurer` is the shared engine of sensitivity analysis and plan search. Every
measurement is one :func:`~.bench.benchmark` run of a quantized variant, stored in the history as
soon as it finishes under a key made of the source, the utterance ids, the bench settings, the
plan's entries and quantization settings and (for static plans) the calibration utterance ids.
Asking again for the same measurement returns the stored one, so an interrupted analysis resumes
where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from speechquant.core.data.datasets import Dataset, iter_loaded
from speechquant.core.evaluation.bench import BenchSettings, benchmark
from speechquant.core.evaluation.experiment import calibration_set, needs_calibration, run_baseline
from speechquant.core.evaluation.history import HistoryStore, make_cache_key
from speechquant.core.evaluation.metrics import compute_wer
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check, report
from speechquant.core.quantization.apply import apply_plan, set_engine
from speechquant.core.quantization.plan import Plan

OBJECTIVES = {"rtf": "rtf", "rtf-encoder": "rtf_encoder", "size": "model_bytes"}
"""Objective name -> the bench figure it minimizes."""


@dataclass(frozen=True)
class UtteranceChange:
    """One utterance whose transcript differs from the float model's."""

    id: str
    ref: str
    base_hyp: str
    hyp: str
    base_errors: int
    errors: int
    ref_words: int

    @property
    def delta(self) -> int:
        """Word errors added (negative: removed) against the float model."""
        return self.errors - self.base_errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delta": self.delta}


@dataclass
class Measurement:
    """One plan (or the float model) measured on the measurer's utterances."""

    label: str
    kind: str
    """``baseline``, ``single`` (one unit), ``loo`` (all but one), ``all``, ``candidate``…"""
    wer: float
    delta_wer: float
    rtf: float
    rtf_encoder: float | None
    model_bytes: int
    speedup: float
    encoder_speedup: float | None
    bytes_saved: int
    n_utterances: int
    unit: str | None = None
    scheme: str | None = None
    plan: Plan | None = None
    changes: list[UtteranceChange] = field(default_factory=list)
    """Utterances whose transcript changed, most word errors added first."""
    cached: bool = False
    run_id: int | None = None
    result: dict[str, Any] = field(default_factory=dict, repr=False)
    """The full ``bench --json`` object."""

    def worst(self, n: int = 3) -> list[UtteranceChange]:
        """The ``n`` utterances that gained the most word errors."""
        return [c for c in self.changes if c.delta > 0][:n]

    def objective(self, name: str) -> float:
        value = getattr(self, OBJECTIVES[name])
        return float("inf") if value is None else float(value)

    def to_dict(self, changes: bool = True) -> dict[str, Any]:
        data = {
            key: getattr(self, key)
            for key in (
                "label", "kind", "unit", "scheme", "wer", "delta_wer", "rtf", "rtf_encoder",
                "model_bytes", "speedup", "encoder_speedup", "bytes_saved", "n_utterances",
                "cached", "run_id",
            )
        }  # fmt: skip
        data["plan"] = self.plan.to_dict() if self.plan is not None else None
        if changes:
            data["changes"] = [c.to_dict() for c in self.changes]
        return data


def _ratio(base: float | None, value: float | None) -> float | None:
    return base / value if base and value else None


class PlanMeasurer:
    """Measures plans on all of ``dataset`` against the float model there.

    Static plans calibrate on ``calib_n`` utterances outside ``exclude`` (default: outside
    ``dataset``), chosen by :func:`~.experiment.calibration_set`, loaded once and shared.
    """

    def __init__(
        self,
        model: LoadedModel,
        dataset: Dataset,
        bench: BenchSettings,
        history: HistoryStore | None,
        *,
        exclude: Dataset | None = None,
        kind: str = "sensitivity",
        group_id: str | None = None,
        reuse: bool = True,
    ) -> None:
        self.model = model
        self.dataset = dataset
        self.bench = replace(bench, limit=None)
        self.history = history
        self.exclude = exclude or dataset
        self.kind = kind
        self.group_id = group_id
        self.reuse = reuse
        self.computed = 0
        self.reused = 0
        self._base: Measurement | None = None
        self._base_scores: dict[str, tuple[str, int]] = {}
        self._calibration: Dataset | None = None
        self._waves: list[torch.Tensor] | None = None
        self._memo: dict[str, Measurement] = {}
        self._variants: dict[str, LoadedModel] = {}
        self._split_waves: list[torch.Tensor] | None = None

    def calibration(
        self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> Dataset:
        if self._calibration is None:
            self._calibration = calibration_set(self.exclude, self.bench, progress, cancel)
        return self._calibration

    def calibration_ids(self) -> list[str]:
        return self._calibration.ids if self._calibration is not None else []

    def _waves_for(
        self, plan: Plan, progress: ProgressCallback | None, cancel: CancelToken | None
    ) -> list[torch.Tensor]:
        if not needs_calibration(plan):
            return []
        if self._waves is None:
            calib = self.calibration(progress, cancel)
            self._waves = [w for _, w in iter_loaded(calib, self.model.sample_rate, cancel=cancel)]
        return self._waves

    def key(self, plan: Plan) -> str:
        settings = self.bench
        calibration = self.calibration().ids if needs_calibration(plan) else None
        return make_cache_key(
            what="plan-measurement",
            source=self.model.source,
            data=self.dataset.source,
            ids=self.dataset.ids,
            warmup=settings.warmup,
            repeats=settings.repeats,
            threads=settings.threads or torch.get_num_threads(),
            normalizer=settings.normalizer,
            encoder_rtf=settings.encoder_rtf,
            torch=torch.__version__,
            entries=dict(sorted(plan.entries.items())),
            quant=asdict(plan.settings),
            calibration=calibration,
        )

    def baseline(
        self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> Measurement:
        """The float model here (reused from the history when measured before)."""
        if self._base is None:
            experiment = run_baseline(
                self.model,
                self.dataset,
                self.bench,
                self.history,
                group_id=self.group_id,
                reuse=self.reuse,
                progress=progress,
                cancel=cancel,
            )
            result = experiment.result
            scores = compute_wer(
                [(u["id"], u["ref"], u["hyp"]) for u in result["utterances"]],
                self.bench.normalizer,
            ).utterances
            self._base_scores = {
                s.id: (u["hyp"], s.errors)
                for s, u in zip(scores, result["utterances"], strict=True)
            }
            self._base = self._measurement(result, "float32", "baseline", None, None, None)
            self._base.cached = experiment.baseline_cached
            self._base.run_id = experiment.run_id
        return self._base

    def measure(
        self,
        plan: Plan,
        label: str,
        kind: str,
        *,
        unit: str | None = None,
        scheme: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Measurement:
        """``plan`` measured here: from the history if stored, else benchmarked and stored."""
        check(cancel)
        self.baseline(progress, cancel)
        if plan.is_float():
            base = self.baseline()
            return replace(base, label=label, kind=kind, unit=unit, scheme=scheme, plan=plan)
        key = self.key(plan)
        if key in self._memo:
            self.reused += 1
            return replace(
                self._memo[key], label=label, kind=kind, unit=unit, scheme=scheme, plan=plan
            )
        cached = self.history.find_baseline(key) if self.history and self.reuse else None
        if cached is not None:
            meta = cached.pop("history", {})
            self.reused += 1
            found = self._measurement(cached, label, kind, unit, scheme, plan)
            found.cached, found.run_id = True, meta.get("id")
            self._memo[key] = found
            return found
        waves = self._waves_for(plan, progress, cancel)
        variant = self.variant(plan, progress, cancel)
        set_engine(plan.settings.engine)
        result = benchmark(variant, self.dataset, self.bench, progress=progress, cancel=cancel)
        run_id = None
        if self.history is not None:
            run_id = self.history.add_run(
                result,
                kind=self.kind,
                settings={
                    **self.bench.to_dict(),
                    "calibration_ids": self.calibration_ids() if waves else [],
                    "label": label,
                    "mode": kind,
                    "unit": unit,
                    "scheme": scheme,
                },
                group_id=self.group_id,
                cache_key=key,
            )
        self.computed += 1
        found = self._measurement(result, label, kind, unit, scheme, plan)
        found.run_id = run_id
        self._memo[key] = found
        return found

    def variant(
        self,
        plan: Plan,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> LoadedModel:
        """``plan`` applied (calibrated as for :meth:`measure`); the last two are kept."""
        if plan.is_float():
            return self.model
        key = self.key(plan)
        if key not in self._variants:
            waves = self._waves_for(plan, progress, cancel)
            built = apply_plan(self.model, plan, waves, progress=progress, cancel=cancel)
            while len(self._variants) >= 2:
                self._variants.pop(next(iter(self._variants)))
            self._variants[key] = built
        return self._variants[key]

    def release(self) -> None:
        """Drop the kept variants (their memory) and the loaded utterances."""
        self._variants.clear()
        self._split_waves = None

    def duel(
        self,
        incumbent: Plan,
        challenger: Plan,
        encoder_only: bool = False,
        rounds: int = 1,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> float:
        """The challenger's time over the incumbent's on these utterances (< 1: faster).

        Each utterance is transcribed (or only encoded) by both, back to back in alternating
        order, so that load from other processes, which drifts over seconds, hits both alike.
        """
        a = self.variant(incumbent, progress, cancel)
        b = self.variant(challenger, progress, cancel)
        if self._split_waves is None:
            loaded = iter_loaded(self.dataset, self.model.sample_rate, cancel=cancel)
            self._split_waves = [w for _, w in loaded]
        waves = self._split_waves
        pair = [(a, incumbent.settings.engine, 0), (b, challenger.settings.engine, 1)]
        totals = [0.0, 0.0]
        for variant, engine, _ in pair:  # warm-up
            set_engine(engine)
            (variant.encode if encoder_only else variant.transcribe)(waves[0])
        steps = rounds * len(waves)
        for step in range(steps):
            check(cancel)
            report(progress, step, steps, "timing against the kept plan")
            wav = waves[step % len(waves)]
            for variant, engine, side in pair if step % 2 == 0 else pair[::-1]:
                set_engine(engine)
                start = time.perf_counter()
                (variant.encode if encoder_only else variant.transcribe)(wav)
                totals[side] += time.perf_counter() - start
        report(progress, steps, steps, "timing against the kept plan")
        return totals[1] / totals[0]

    def _measurement(
        self,
        result: dict[str, Any],
        label: str,
        kind: str,
        unit: str | None,
        scheme: str | None,
        plan: Plan | None,
    ) -> Measurement:
        base = self._base.result if self._base is not None else result
        scores = compute_wer(
            [(u["id"], u["ref"], u["hyp"]) for u in result["utterances"]], self.bench.normalizer
        ).utterances
        changes = []
        for score, utt in zip(scores, result["utterances"], strict=True):
            base_hyp, base_errors = self._base_scores.get(score.id, (utt["hyp"], score.errors))
            if utt["hyp"] != base_hyp:
                changes.append(
                    UtteranceChange(
                        score.id,
                        utt["ref"],
                        base_hyp,
                        utt["hyp"],
                        base_errors,
                        score.errors,
                        score.ref_words,
                    )  # fmt: skip
                )
        changes.sort(key=lambda c: (-c.delta, c.id))
        return Measurement(
            label=label,
            kind=kind,
            wer=result["wer"],
            delta_wer=result["wer"] - base["wer"],
            rtf=result["rtf"],
            rtf_encoder=result.get("rtf_encoder"),
            model_bytes=result["model_bytes"],
            speedup=_ratio(base["rtf"], result["rtf"]) or float("nan"),
            encoder_speedup=_ratio(base.get("rtf_encoder"), result.get("rtf_encoder")),
            bytes_saved=base["model_bytes"] - result["model_bytes"],
            n_utterances=result["n_utterances"],
            unit=unit,
            scheme=scheme,
            plan=plan,
            changes=changes,
            result=result,
        )
