"""Per-unit sensitivity: what quantizing each unit alone (and all but it) costs and gains.

For every unit (see :mod:`.units`) and every scheme that applies to it, the float model is
measured with only that unit quantized (``single``): ΔWER against the float model with the
utterances whose transcripts changed, end-to-end and encoder speed-up, bytes saved. With
``leave_one_out`` each scheme is also measured on every unit at once (``all``) and on every unit
but one (``loo``), which shows how much of the combined damage each unit carries.

Measurements run singles first, then the all-unit plans, then leave-one-out. Each is stored in the
run history when it finishes and reused on a later run with the same source, utterances, settings,
unit and scheme (see :class:`~.measure.PlanMeasurer`), so a cancelled or crashed analysis resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from speechquant.core.data.datasets import Dataset
from speechquant.core.errors import PlanError
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.executor import SessionExecutor
from speechquant.core.evaluation.experiment import needs_calibration
from speechquant.core.evaluation.history import HistoryStore, new_group_id
from speechquant.core.evaluation.measure import Measurement, PlanMeasurer
from speechquant.core.evaluation.tables import (
    NOT_SIGNIFICANT,
    ci_text,
    delta_text,
    significance,
    speedup_text,
    words_note,
)
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check, report
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import search_candidates
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.search.units import Unit, assignment_plan, default_units, restrict_schemes


@dataclass
class SensitivitySettings:
    """Which schemes to try, whether to run leave-one-out, and the plans' quantization settings."""

    schemes: tuple[str, ...] = field(default_factory=search_candidates)
    leave_one_out: bool = True
    quant: QuantSettings = field(default_factory=QuantSettings)


@dataclass
class SensitivityRow:
    """One unit under one scheme: alone, and (with leave-one-out) every other unit but it."""

    unit: Unit
    scheme: str
    single: Measurement
    loo: Measurement | None = None
    all_units: Measurement | None = None

    @property
    def loo_recovery(self) -> float | None:
        """WER points won back by keeping this unit float while every other unit is quantized."""
        if self.loo is None or self.all_units is None:
            return None
        return self.all_units.delta_wer - self.loo.delta_wer

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit.name,
            "paths": list(self.unit.paths),
            "scheme": self.scheme,
            "single": self.single.to_dict(),
            "loo": self.loo.to_dict() if self.loo is not None else None,
            "loo_recovery": self.loo_recovery,
            "comparison": self.single.to_dict(changes=False)["comparison"],
            "verdict": verdict(self.single),
        }


@dataclass
class SensitivityResult:
    """Everything measured; ``rows`` in unit order, then scheme order."""

    source: str
    data: str
    ids: list[str]
    calibration_ids: list[str]
    units: list[Unit]
    schemes: list[str]
    baseline: Measurement
    rows: list[SensitivityRow]
    all_units: dict[str, Measurement]
    computed: int
    reused: int
    group_id: str | None = None
    machine: dict[str, Any] | None = None
    """Where it was measured (:meth:`~speechquant.core.machine.MachineInfo.to_json`)."""

    def row(self, unit: str, scheme: str) -> SensitivityRow | None:
        return next((r for r in self.rows if r.unit.name == unit and r.scheme == scheme), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "machine": self.machine,
            "data": self.data,
            "ids": self.ids,
            "calibration_ids": self.calibration_ids,
            "units": [u.to_dict() for u in self.units],
            "schemes": self.schemes,
            "baseline": self.baseline.to_dict(changes=False),
            "rows": [r.to_dict() for r in self.rows],
            "all_units": {s: m.to_dict() for s, m in self.all_units.items()},
            "computed": self.computed,
            "reused": self.reused,
        }


@dataclass(frozen=True)
class _Job:
    kind: str
    label: str
    unit: str | None
    scheme: str
    plan: Plan


def sensitivity_jobs(
    units: Sequence[Unit], schemes: Sequence[str], quant: QuantSettings, leave_one_out: bool
) -> list[_Job]:
    """The measurements to make, in order: singles, then all-unit plans, then leave-one-out."""
    jobs = [
        _Job("single", f"{u.name} {s}", u.name, s, assignment_plan(units, {u.name: s}, quant))
        for u in units
        for s in schemes
        if s in u.schemes
    ]
    if leave_one_out:
        for s in schemes:
            members = [u for u in units if s in u.schemes]
            if len(members) < 2:
                continue
            every = {u.name: s for u in members}
            jobs.append(_Job("all", f"all {s}", None, s, assignment_plan(units, every, quant)))
            for u in members:
                rest = {name: s for name in every if name != u.name}
                plan = assignment_plan(units, rest, quant)
                jobs.append(_Job("loo", f"all {s} but {u.name}", u.name, s, plan))
    for job in jobs:
        job.plan.name = job.label.replace(" ", "-")
    return jobs


def run_sensitivity(
    model: LoadedModel,
    dataset: Dataset,
    history: HistoryStore | None,
    *,
    units: Sequence[Unit] | None = None,
    settings: SensitivitySettings | None = None,
    bench: BenchSettings | None = None,
    measurer: PlanMeasurer | None = None,
    on_measurement: Callable[[Measurement], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    executor: SessionExecutor | None = None,
) -> SensitivityResult:
    """Measure every unit × scheme on ``dataset`` (all of it; apply a limit beforehand).

    ``units`` defaults to :func:`~.units.default_units`. Static units calibrate on utterances
    outside ``dataset``; pass a ``measurer`` to share its utterances, calibration and cache (plan
    search does). ``on_measurement`` gets the baseline and then each measurement as it finishes
    (a GUI fills its table with it). ``executor`` runs the timing sessions (default: this
    process; a given ``measurer`` brings its own). Raises :class:`~.errors.Cancelled` when
    ``cancel`` is set; what finished is kept in ``history``.
    """
    settings = settings or SensitivitySettings()
    bench = bench or BenchSettings()
    chosen = restrict_schemes(
        units if units is not None else default_units(model.mods), settings.schemes
    )
    if not chosen:
        raise PlanError(
            f"none of the schemes {', '.join(settings.schemes)} applies to any unit of this model"
        )
    if measurer is None:
        measurer = PlanMeasurer(
            model, dataset, bench, history, group_id=new_group_id(), executor=executor
        )
    schemes = [s for s in settings.schemes if any(s in u.schemes for u in chosen)]
    jobs = sensitivity_jobs(chosen, schemes, settings.quant, settings.leave_one_out)
    total = len(jobs) + 1
    report(progress, 0, total, "sensitivity")
    if any(needs_calibration(job.plan) for job in jobs):
        measurer.calibration(progress, cancel)  # fail early where calibration data is short
    baseline = measurer.baseline(progress, cancel)
    if on_measurement is not None:
        on_measurement(baseline)
    measurer.prefetch([job.plan for job in jobs], cancel)
    done: dict[tuple[str, str | None, str], Measurement] = {}
    for i, job in enumerate(jobs, start=1):
        check(cancel)
        report(progress, i, total, "sensitivity")
        found = measurer.measure(
            job.plan,
            job.label,
            job.kind,
            unit=job.unit,
            scheme=job.scheme,
            progress=progress,
            cancel=cancel,
        )
        done[(job.kind, job.unit, job.scheme)] = found
        if on_measurement is not None:
            on_measurement(found)
    report(progress, total, total, "sensitivity")
    all_units = {s: m for (kind, _, s), m in done.items() if kind == "all"}
    rows = [
        SensitivityRow(
            unit=u,
            scheme=s,
            single=done[("single", u.name, s)],
            loo=done.get(("loo", u.name, s)),
            all_units=all_units.get(s),
        )
        for u in chosen
        for s in schemes
        if s in u.schemes
    ]
    return SensitivityResult(
        source=model.source,
        data=measurer.dataset.source,
        ids=measurer.dataset.ids,
        calibration_ids=measurer.calibration_ids(),
        units=list(chosen),
        schemes=schemes,
        baseline=baseline,
        rows=rows,
        all_units=all_units,
        computed=measurer.computed,
        reused=measurer.reused,
        group_id=measurer.group_id,
        machine=measurer.executor.timing_machine(torch.get_num_threads()).to_json(),
    )


def verdict(m: Measurement) -> str:
    """What the intervals say of one measurement: worse WER, faster, slower, or noise."""
    c = m.comparison
    if c is None:
        return "-"
    words = []
    verdicts = significance(c)
    if verdicts.wer:
        words.append("worse WER" if c.delta_wer > 0 else "better WER")
    if c.speedup is not None and verdicts.speed:
        words.append("faster" if c.speedup > 1 else "slower")
    return ", ".join(words) or NOT_SIGNIFICANT


def ranked(rows: Sequence[SensitivityRow]) -> list[SensitivityRow]:
    """Rows by the evidence: least harmful first (upper end of the ΔWER interval), then by the
    lower end of the speed-up interval, fastest first. Noise does not reorder clear results."""

    def key(row: SensitivityRow) -> tuple[float, float]:
        c = row.single.comparison
        low = c.speedup_ci[0] if c is not None and c.speedup_ci else 0.0
        return (row.single.delta_wer_high(), -low)

    return sorted(rows, key=key)


def format_sensitivity(result: SensitivityResult, worst: int = 2) -> str:
    """The table: one line per unit × scheme, least harmful first (:func:`ranked`), then the
    all-unit plans; the verdict says what the intervals resolve."""
    base = result.baseline
    header = (
        f"{'unit':<25}{'scheme':<8}{'ΔWER [95% CI]':<24}{'speed-up [95% CI]':<26}"
        f"{'enc x':>7}{'saved MB':>9}{'LOO ΔWER':>9}  {'verdict':<20}worst (word errors added)"
    )
    lines = [header, "-" * len(header)]

    def line(name: str, scheme: str, m: Measurement, loo: Measurement | None) -> str:
        worst_text = ", ".join(f"{c.id} +{c.delta}" for c in m.worst(worst)) or "-"
        cached = "*" if m.cached else " "
        c = m.comparison
        speed = "-" if c is None else speedup_text(c.speedup, c.speedup_ci, significance(c).speed)
        return (
            f"{name[:24]:<25}{scheme:<8}{delta_text(c):<24}{speed:<26}"
            f"{_x(m.encoder_speedup):>7}{m.bytes_saved / 1e6:>9.2f}"
            f"{(f'{loo.delta_wer:+.2f}' if loo else '-'):>9}{cached} {verdict(m):<20}{worst_text}"
        )

    for row in ranked(result.rows):
        lines.append(line(row.unit.name, row.scheme, row.single, row.loo))
    for scheme, m in result.all_units.items():
        lines.append(line("(all units)", scheme, m, None))
    bench = base.bench
    ci = ci_text(base.wer_ci)
    lines.append(
        f"float32: WER {base.wer:.2f} % {ci}, RTF {base.rtf:.4f}, encoder RTF "
        f"{'-' if base.rtf_encoder is None else f'{base.rtf_encoder:.4f}'}, "
        f"{base.model_bytes / 1e6:.1f} MB on {base.n_utterances} utterances; "
        f"{result.computed} measured, {result.reused} reused from the history (*)"
    )
    if base.cached and bench is not None:
        lines.append(
            f"float32 WER and transcripts from the history, measured {bench.started_at} (its "
            "timings are not used: every row timed the float model again alongside)"
        )
    if bench is not None:
        lines.append(
            f"{words_note(bench.ref_words, bench.n_utterances)}; speed-ups paired against the "
            f"float model in each row's own session; {NOT_SIGNIFICANT}: intervals include no change"
        )
    return "\n".join(lines)


def _x(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}x"
