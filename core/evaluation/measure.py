"""Measure plans on one fixed set of utterances against its float baseline, cached in the run history.

:class:`PlanMeasurer` is the shared engine of sensitivity analysis and plan search. Every
measurement is one :func:`~.bench.benchmark` run of a quantized variant, stored in the history as
soon as it finishes under a key made of the source, the utterance ids, the bench settings, the
plan's entries and quantization settings and (for static plans) the calibration utterance ids.
Asking again for the same measurement returns the stored one, so an interrupted analysis resumes
where it stopped.

Every plan is timed together with the float model in one session (by the measurer's executor,
:mod:`.executor`: :func:`~.bench.paired_benchmark` in this process unless a cluster is given), so
its speed-ups come from one session; the float baseline (from the history when stored) supplies the
WER and transcripts that ΔWER is counted against. A stored measurement keeps the speed-ups of its
own session when it was timed on this machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

import torch

from speechquant.core.data.datasets import Dataset, iter_loaded
from speechquant.core.evaluation.bench import BenchSettings, timing_order
from speechquant.core.evaluation.executor import LOCAL, PlanRun, SessionExecutor
from speechquant.core.evaluation.experiment import (
    calibration_set,
    model_key,
    needs_calibration,
    run_baseline,
)
from speechquant.core.evaluation.history import HistoryStore, make_cache_key
from speechquant.core.evaluation.measurement import OBJECTIVES, Measurement, UtteranceChange
from speechquant.core.evaluation.results import BenchResult, Comparison, compare, utterance_counts
from speechquant.core.evaluation.stats import SpeedUp, speedup_interval
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check, report
from speechquant.core.quantization.apply import apply_plan, set_engine
from speechquant.core.quantization.plan import Plan


class PlanMeasurer:
    """Measures plans on all of ``dataset`` against the float model there.

    Static plans calibrate on ``calib_n`` utterances outside ``exclude`` (default: outside
    ``dataset``), chosen by :func:`~.experiment.calibration_set`, loaded once and shared.
    ``executor`` runs each timing session (default: this process).
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
        executor: SessionExecutor | None = None,
    ) -> None:
        self.model = model
        self.executor = executor or LOCAL
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
        self._machine: str | None = None

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
            **model_key(self.model),
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
            **self.executor.key_parts(self.dataset),
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
                executor=self.executor,
            )
            result = experiment.bench
            self._base_scores = {
                u.id: (u.hyp, counts[0])
                for u, counts in zip(
                    result.utterances,
                    utterance_counts(result, self.bench.normalizer).values(),
                    strict=True,
                )
            }
            self._base = self._measurement(result, None, "float32", "baseline", None, None, None)
            self._base.cached = experiment.baseline_cached
            self._base.run_id = experiment.run_id
        return self._base

    def _machine_key(self) -> str:
        if self._machine is None:
            self._machine = self.executor.timing_machine().key
        return self._machine

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
        """``plan`` measured here: from the history if stored, else benchmarked paired with the
        float model and stored."""
        check(cancel)
        base = self.baseline(progress, cancel)
        assert base.bench is not None
        if plan.is_float():
            return replace(base, label=label, kind=kind, unit=unit, scheme=scheme, plan=plan)
        key = self.key(plan)
        if key in self._memo:
            self.reused += 1
            return replace(
                self._memo[key], label=label, kind=kind, unit=unit, scheme=scheme, plan=plan
            )
        cached = self.history.find_cached(key) if self.history and self.reuse else None
        if cached is not None:
            self.reused += 1
            stored = cached.result
            notes = []
            if stored.machine_key != self._machine_key():
                where = "before machines were recorded" if stored.machine is None else (
                    f"on {stored.machine.label()}"
                )  # fmt: skip
                notes.append(f"reused measurement was timed {where}: its speed-ups are not used")
                stored.comparison = None
            comparison = compare(base.bench, stored, normalizer=self.bench.normalizer)
            comparison.warnings += notes
            found = self._measurement(stored, comparison, label, kind, unit, scheme, plan)
            found.cached, found.run_id = True, cached.meta.id
            self._memo[key] = found
            return found
        run = self._run(plan, progress, cancel)
        float_side, result = self.executor.measure(
            [PlanRun(None, lambda: self.model), run], self.dataset, self.bench, progress, cancel
        )
        comparison = compare(
            base.bench, result, timing_base=float_side, normalizer=self.bench.normalizer
        )
        changed = [
            u.id
            for u in float_side.utterances
            if u.id in self._base_scores and u.hyp != self._base_scores[u.id][0]
        ]
        if changed:
            comparison.warnings.append(
                f"the float model's transcripts differ from the baseline's on {len(changed)} "
                f"utterance(s) ({', '.join(changed[:3])}): decoding is not deterministic here"
            )
        result.comparison = comparison
        run_id = None
        if self.history is not None:
            run_id = self.history.add_run(
                result.to_json(),
                kind=self.kind,
                settings={
                    **self.bench.to_dict(),
                    "calibration_ids": run.calibration_ids,
                    "label": label,
                    "mode": kind,
                    "unit": unit,
                    "scheme": scheme,
                },
                group_id=self.group_id,
                cache_key=key,
            )
        self.computed += 1
        found = self._measurement(result, comparison, label, kind, unit, scheme, plan)
        found.run_id = run_id
        self._memo[key] = found
        return found

    def _run(
        self, plan: Plan, progress: ProgressCallback | None, cancel: CancelToken | None
    ) -> PlanRun:
        waves = self._waves_for(plan, progress, cancel)
        ids = self.calibration_ids() if waves else []
        return PlanRun(plan, lambda: self.variant(plan, progress, cancel), ids, waves)

    def prefetch(self, plans: list[Plan], cancel: CancelToken | None = None) -> None:
        """Tell the executor which plans :meth:`measure` will be asked for (a cluster queues
        them all at once); plans already measured, stored in the history or announced under
        another name (the same entries, e.g. a leave-one-out plan equal to a single) are left out."""
        if not self.executor.queues_ahead:
            return
        runs = []
        seen = set(self._memo)
        for plan in plans:
            key = self.key(plan)
            if plan.is_float() or key in seen:
                continue
            seen.add(key)
            stored = self.history.find_cached(key) if self.history and self.reuse else None
            if stored is None:
                runs.append(self._run(plan, None, cancel))
        if runs:
            self.executor.prefetch(runs, self.dataset, self.bench)

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
    ) -> SpeedUp:
        """The challenger's speed-up over the incumbent on these utterances, with its interval.

        Each utterance is transcribed (or only encoded) by both, back to back in alternating
        order (A B, B A, …) after one warm-up each, so that load from other processes, which
        drifts over seconds, hits both alike.
        """
        a = self.variant(incumbent, progress, cancel)
        b = self.variant(challenger, progress, cancel)
        if self._split_waves is None:
            loaded = iter_loaded(self.dataset, self.model.sample_rate, cancel=cancel)
            self._split_waves = [w for _, w in loaded]
        waves = self._split_waves
        pair = [(a, incumbent.settings.engine), (b, challenger.settings.engine)]
        times: list[list[float]] = [[], []]
        for variant, engine in pair:  # warm-up
            set_engine(engine)
            (variant.encode if encoder_only else variant.transcribe)(waves[0])
        steps = rounds * len(waves)
        for step in range(steps):
            check(cancel)
            report(progress, step, steps, "timing against the kept plan")
            wav = waves[step % len(waves)]
            for side in timing_order(2, step):
                variant, engine = pair[side]
                set_engine(engine)
                start = time.perf_counter()
                (variant.encode if encoder_only else variant.transcribe)(wav)
                times[side].append(time.perf_counter() - start)
        report(progress, steps, steps, "timing against the kept plan")
        return speedup_interval(times[0], times[1])

    def _measurement(
        self,
        result: BenchResult,
        comparison: Comparison | None,
        label: str,
        kind: str,
        unit: str | None,
        scheme: str | None,
        plan: Plan | None,
    ) -> Measurement:
        base = self._base.bench if self._base is not None and self._base.bench else result
        counts = utterance_counts(result, self.bench.normalizer)
        changes = []
        for utt in result.utterances:
            errors, ref_words = counts[utt.id]
            base_hyp, base_errors = self._base_scores.get(utt.id, (utt.hyp, errors))
            if utt.hyp != base_hyp:
                changes.append(
                    UtteranceChange(
                        utt.id, utt.ref, base_hyp, utt.hyp, base_errors, errors, ref_words
                    )
                )
        changes.sort(key=lambda c: (-c.delta, c.id))
        if comparison is None:
            speedup, encoder = 1.0, (1.0 if result.rtf_encoder is not None else None)
        else:
            speedup = float("nan") if comparison.speedup is None else comparison.speedup
            encoder = comparison.speedup_encoder
        return Measurement(
            label=label,
            kind=kind,
            wer=result.wer,
            delta_wer=0.0 if comparison is None else comparison.delta_wer,
            rtf=result.rtf,
            rtf_encoder=result.rtf_encoder,
            model_bytes=result.model_bytes,
            speedup=speedup,
            encoder_speedup=encoder,
            bytes_saved=base.model_bytes - result.model_bytes,
            n_utterances=result.n_utterances,
            unit=unit,
            scheme=scheme,
            plan=plan,
            changes=changes,
            bench=result,
            comparison=comparison,
        )


__all__ = ["OBJECTIVES", "Measurement", "PlanMeasurer", "UtteranceChange"]
