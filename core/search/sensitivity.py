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

from speechquant.core.data.datasets import Dataset
from speechquant.core.errors import PlanError
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.experiment import needs_calibration
from speechquant.core.evaluation.history import HistoryStore, new_group_id
from speechquant.core.evaluation.measure import Measurement, PlanMeasurer
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

    def row(self, unit: str, scheme: str) -> SensitivityRow | None:
        return next((r for r in self.rows if r.unit.name == unit and r.scheme == scheme), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
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
) -> SensitivityResult:
    """Measure every unit × scheme on ``dataset`` (all of it; apply a limit beforehand).

    ``units`` defaults to :func:`~.units.default_units`. Static units calibrate on utterances
    outside ``dataset``; pass a ``measurer`` to share its utterances, calibration and cache (plan
    search does). ``on_measurement`` gets the baseline and then each measurement as it finishes
    (a GUI fills its table with it). Raises :class:`~.errors.Cancelled` when ``cancel`` is set;
    what finished is kept in ``history``.
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
        measurer = PlanMeasurer(model, dataset, bench, history, group_id=new_group_id())
    schemes = [s for s in settings.schemes if any(s in u.schemes for u in chosen)]
    jobs = sensitivity_jobs(chosen, schemes, settings.quant, settings.leave_one_out)
    total = len(jobs) + 1
    report(progress, 0, total, "sensitivity")
    if any(needs_calibration(job.plan) for job in jobs):
        measurer.calibration(progress, cancel)  # fail early where calibration data is short
    baseline = measurer.baseline(progress, cancel)
    if on_measurement is not None:
        on_measurement(baseline)
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
    )


def _x(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}x"


def format_sensitivity(result: SensitivityResult, worst: int = 2) -> str:
    """The table: one line per unit × scheme (and per all-unit plan), worst utterances last."""
    base = result.baseline
    header = (
        f"{'unit':<25}{'scheme':<8}{'ΔWER':>7}{'speed-up':>9}{'enc x':>7}{'saved MB':>9}"
        f"{'LOO ΔWER':>9}  worst utterances (word errors added)"
    )
    lines = [header, "-" * len(header)]

    def line(name: str, scheme: str, m: Measurement, loo: Measurement | None) -> str:
        worst_text = ", ".join(f"{c.id} +{c.delta}" for c in m.worst(worst)) or "-"
        cached = "*" if m.cached else " "
        return (
            f"{name[:24]:<25}{scheme:<8}{m.delta_wer:>+7.2f}{_x(m.speedup):>9}{_x(m.encoder_speedup):>7}"
            f"{m.bytes_saved / 1e6:>9.2f}{(f'{loo.delta_wer:+.2f}' if loo else '-'):>9}{cached} "
            f"{worst_text}"
        )

    for row in result.rows:
        lines.append(line(row.unit.name, row.scheme, row.single, row.loo))
    for scheme, m in result.all_units.items():
        lines.append(line("(all units)", scheme, m, None))
    lines.append(
        f"float32: WER {base.wer:.2f} %, RTF {base.rtf:.4f}, encoder RTF "
        f"{'-' if base.rtf_encoder is None else f'{base.rtf_encoder:.4f}'}, "
        f"{base.model_bytes / 1e6:.1f} MB on {base.n_utterances} utterances; "
        f"{result.computed} measured, {result.reused} reused from the history (*)"
    )
    return "\n".join(lines)
