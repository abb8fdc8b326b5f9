"""Automatic plan search: the fastest (or smallest) per-unit plan within a WER budget.

The utterances are split three ways, all disjoint: calibration (for static units; the first
``calib_n`` in sorted order, as :func:`~.experiment.calibration_set` picks them), a *search* split
(``search_n`` utterances spread evenly over the rest) and an *evaluation* split (the others);
see :mod:`.splits`.

The search (:func:`run_search`) is greedy with measured acceptance, step by step as
:data:`ALGORITHM` states (the same text is in ``speechquant search --help``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from speechquant.core.data.datasets import Dataset
from speechquant.core.errors import DataError, PlanError
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.executor import SessionExecutor
from speechquant.core.evaluation.history import HistoryStore, new_group_id
from speechquant.core.evaluation.measure import OBJECTIVES, Measurement, PlanMeasurer
from speechquant.core.evaluation.pareto import pareto_front
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check, report
from speechquant.core.quantization.decoder_step import refusal
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import (
    check_settings,
    get_scheme,
    search_candidates,
    uses_engine,
)
from speechquant.core.quantization.settings import ENGINES, QuantSettings
from speechquant.core.quantization.tree import build_tree
from speechquant.core.search.moves import (
    Estimates,
    apply_move,
    candidate_moves,
    plan_key,
    preset_assignments,
)
from speechquant.core.search.sensitivity import (
    SensitivityResult,
    SensitivitySettings,
    run_sensitivity,
)
from speechquant.core.search.splits import make_splits
from speechquant.core.search.units import Unit, assignment_plan, default_units, restrict_schemes

ALGORITHM = """\
Greedy search with measured acceptance:
 1. Sensitivity on the search split: every unit alone under every scheme (ΔWER, objective gain).
 2. Seeds: the float model, "every unit under scheme S" for each scheme, and each built-in
    preset that maps onto the units (int8 seeds under each engine). The best seed within the
    budget (compared as in 4) is the starting plan, so the search starts from the best preset.
 3. Moves set units to a scheme: whole families first (e.g. all decoder layers), then single
    units. A move's estimated gain is the sum of its units' single-unit gains over their current
    scheme. Moves with a unit whose single ΔWER alone exceeds the budget are dropped. The rest
    are tried best gain per estimated ΔWER first; single-unit moves without estimated gain come
    last, biggest units first (a small unit's gain is often below the timing noise).
 4. The first move is re-measured as a whole plan on the search split (paired with the float
    model) and kept only if its ΔWER stays within the budget (the point estimate, or with
    --confidence the upper end of its 95 % interval) and it improves the objective: speed
    only when the 95 % interval of its speed-up over the kept plan lies above 1, size by any
    amount (sizes are exact); a move not kept, or back to a scheme the units left, is never
    tried. Moves are re-ranked after each kept one. Repeat until no move is left or max-evals
    plans were measured. Single-unit speed gains whose interval includes 1 count as none.
    Speed is compared by a paired timing: candidate and kept plan transcribe (rtf-encoder:
    encode) each search utterance back to back in alternating order (A B, B A, ...), so that
    load from other processes hits both alike (duel-rounds 0: the candidate's speed-up over
    float must lie above the kept plan's, intervals apart).
 5. The kept plan is re-measured under each other engine; the best within the budget wins.
    Then, for a Whisper greedy searcher, with its later decoder steps scripted
    (decoder_step = scripted), kept by the rule of 4.
 6. The winner is confirmed on the evaluation split against the float model there; its
    figures there, with their intervals, are the result.
"""


SCRIPTED_MOVE = "decoder step -> scripted"


def _apart(m: Measurement, kept: Measurement, objective: str) -> bool:
    """The candidate's speed-up over float lies above the kept plan's, intervals apart."""
    mc, kc = m.comparison, kept.comparison
    key = "speedup_ci" if objective == "rtf" else "speedup_encoder_ci"
    low: list[float] | None = getattr(mc, key, None) if mc is not None else None
    if not low:
        return False
    if kc is None:  # the kept plan is the float model
        return low[0] > 1.0
    high: list[float] | None = getattr(kc, key, None)
    return high is not None and low[0] > high[1]


def default_engines() -> tuple[str, ...]:
    supported = torch.backends.quantized.supported_engines
    return tuple(e for e in ("x86", "onednn") if e in supported) or ("x86",)


@dataclass
class SearchSettings:
    """The budget (WER points on the search split), the objective and the search's bounds."""

    max_wer_increase: float
    objective: str = "rtf"
    schemes: tuple[str, ...] = field(default_factory=search_candidates)
    engines: tuple[str, ...] = field(default_factory=default_engines)
    search_n: int = 20
    eval_n: int | None = None
    max_evals: int = 30
    confidence: bool = False
    """Budget rule: the upper end of the ΔWER interval (True) or its point estimate (False)."""
    duel_rounds: int = 1
    """Paired timing passes of a candidate against the kept plan (0: compare bench figures)."""
    leave_one_out: bool = False
    quant: QuantSettings = field(default_factory=QuantSettings)

    def __post_init__(self) -> None:
        if not self.max_wer_increase >= 0:
            raise DataError(
                f"the WER budget (max_wer_increase) must be >= 0, got {self.max_wer_increase}"
            )
        if self.objective not in OBJECTIVES:
            raise DataError(
                f"unknown objective '{self.objective}'; use one of {', '.join(OBJECTIVES)}"
            )
        self.schemes = tuple(self.schemes)
        for scheme in self.schemes:
            get_scheme(scheme)
        if not [s for s in self.schemes if s != "none"]:
            raise PlanError("the search needs at least one scheme other than none")
        unknown = [e for e in self.engines if e not in ENGINES]
        if unknown or not self.engines:
            raise PlanError(f"unknown engine(s) {unknown}; use some of {', '.join(ENGINES)}")
        if self.search_n < 1 or (self.eval_n is not None and self.eval_n < 1):
            raise DataError(
                "search utterances (search_n) and evaluation utterances (eval_n) must be at least 1"
            )
        check_settings(self.quant)

    def budget_figure(self, m: Measurement) -> float:
        """The ΔWER the budget is held against under this rule."""
        return m.delta_wer_high() if self.confidence else m.delta_wer

    def within_budget(self, m: Measurement) -> bool:
        return self.budget_figure(m) <= self.max_wer_increase + 1e-9

    @property
    def budget_rule(self) -> str:
        which = "upper end of the 95 % ΔWER interval" if self.confidence else "ΔWER"
        return f"{which} <= {self.max_wer_increase:+.2f} WER points"

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "quant"}
        data["budget_rule"] = self.budget_rule
        return {**data, "quant": Plan(settings=self.quant).to_dict()["settings"]}


@dataclass
class SearchStep:
    """One plan measured on the search split during the search."""

    measurement: Measurement
    assignment: dict[str, str]
    engine: str
    move: str
    within_budget: bool
    accepted: bool
    time_ratio: float | None = None
    """Its time over the kept plan's in a paired timing (< 1: faster), if one was run."""
    vs_kept_ci: list[float] | None = None
    """95 % interval of its speed-up over the kept plan in that paired timing."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "move": self.move,
            "engine": self.engine,
            "decoder_step": self.measurement.plan.settings.decoder_step
            if self.measurement.plan is not None
            else "native",
            "assignment": self.assignment,
            "within_budget": self.within_budget,
            "accepted": self.accepted,
            "time_ratio": self.time_ratio,
            "vs_kept_ci": self.vs_kept_ci,
            **self.measurement.to_dict(changes=False),
        }


@dataclass
class SearchResult:
    """The plan found, its figures on both splits, every plan tried, the sensitivity behind it."""

    plan: Plan
    assignment: dict[str, str]
    settings: SearchSettings
    search: Measurement
    search_baseline: Measurement
    evaluation: Measurement
    evaluation_baseline: Measurement
    steps: list[SearchStep]
    sensitivity: SensitivityResult
    calibration_ids: list[str]
    eval_ids: list[str]

    @property
    def within_budget_on_evaluation(self) -> bool:
        return self.settings.within_budget(self.evaluation)

    def headline(self) -> dict[str, Any]:
        """The plan's figures on the evaluation split (the result), with their intervals."""
        m = self.evaluation
        c = m.comparison
        return {
            "split": "evaluation",
            "n_utterances": m.n_utterances,
            "wer": m.wer,
            "wer_ci": m.wer_ci,
            "comparison": None if c is None else c.to_json(),
        }

    def evaluated(self) -> list[Measurement]:
        """Every plan tried on the search split (the first is the float model)."""
        return [s.measurement for s in self.steps]

    def pareto(self) -> list[int]:
        """Indices into :meth:`evaluated` on the WER-vs-RTF Pareto front, by RTF."""
        return pareto_front([(m.objective("rtf"), m.wer) for m in self.evaluated()])

    def to_dict(self) -> dict[str, Any]:
        evaluated = self.evaluated()
        return {
            "source": self.search_baseline.result.get("source"),
            "machine": self.sensitivity.machine,
            "algorithm": ALGORITHM,
            "headline": self.headline(),
            "settings": self.settings.to_dict(),
            "plan": self.plan.to_dict(),
            "assignment": self.assignment,
            "search": self.search.to_dict(),
            "search_baseline": self.search_baseline.to_dict(changes=False),
            "evaluation": self.evaluation.to_dict(),
            "evaluation_baseline": self.evaluation_baseline.to_dict(changes=False),
            "within_budget_on_evaluation": self.within_budget_on_evaluation,
            "splits": {
                "search": self.sensitivity.ids,
                "evaluation": self.eval_ids,
                "calibration": self.calibration_ids,
            },
            "steps": [s.to_dict() for s in self.steps],
            "pareto": [
                {
                    "label": evaluated[i].label,
                    "wer": evaluated[i].wer,
                    "relative_time": evaluated[i].objective("rtf"),
                }
                for i in self.pareto()
            ],
            "sensitivity": self.sensitivity.to_dict(),
        }


def run_search(
    model: LoadedModel,
    dataset: Dataset,
    settings: SearchSettings,
    history: HistoryStore | None,
    *,
    bench: BenchSettings | None = None,
    units: Sequence[Unit] | None = None,
    on_step: Callable[[SearchStep], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    executor: SessionExecutor | None = None,
) -> SearchResult:
    """Search per-unit schemes and the engine for the best plan within the budget (see ALGORITHM).

    ``dataset`` is split by :func:`make_splits`; every measurement goes through the history
    (cached and resumable like :func:`~.sensitivity.run_sensitivity`). ``on_step`` gets each plan
    tried as soon as it is measured (its ``accepted`` flag may change later in the search).
    ``executor`` runs the measurements' sessions; duels against the kept plan run here.
    """
    bench = replace(bench or BenchSettings(), limit=None)
    tree = build_tree(model.mods)
    chosen = restrict_schemes(
        units if units is not None else default_units(model.mods, tree), settings.schemes
    )
    calibrate = any(get_scheme(s).needs_calibration for u in chosen for s in u.schemes)
    splits = make_splits(dataset, settings.search_n, settings.eval_n, bench, calibrate)
    group = new_group_id()
    measurer = PlanMeasurer(
        model, splits.search, bench, history, exclude=splits.union, kind="search",
        group_id=group, executor=executor,
    )  # fmt: skip
    quant = [replace(settings.quant, engine=e) for e in settings.engines]
    sens = run_sensitivity(
        model,
        splits.search,
        history,
        units=chosen,
        settings=SensitivitySettings(settings.schemes, settings.leave_one_out, quant[0]),
        bench=bench,
        measurer=measurer,
        progress=progress,
        cancel=cancel,
    )
    chosen = sens.units
    est = Estimates(sens, settings.objective)
    budget = settings.max_wer_increase
    steps: list[SearchStep] = []
    tried: set[tuple[Any, ...]] = set()
    rejected: set[tuple[tuple[str, ...], str]] = set()

    def evaluate(
        assignment: dict[str, str], engine: str, move: str, decoder_step: str | None = None
    ) -> SearchStep:
        check(cancel)
        report(progress, len(steps), settings.max_evals, "search")
        qs = next(q for q in quant if q.engine == engine)
        qs = replace(qs, decoder_step=decoder_step or qs.decoder_step)
        plan = assignment_plan(chosen, assignment, qs, name=f"search-{len(steps)}")
        tried.add(plan_key(assignment, engine, qs.decoder_step))
        m = measurer.measure(plan, move, "candidate", progress=progress, cancel=cancel)
        step = SearchStep(m, dict(assignment), engine, move, settings.within_budget(m), False)
        steps.append(step)
        if on_step is not None:
            on_step(step)
        return step

    def better(step: SearchStep, than: SearchStep) -> bool:
        if not step.within_budget:
            return False
        objective = settings.objective
        if objective == "size":
            return step.measurement.model_bytes < than.measurement.model_bytes
        if settings.duel_rounds < 1:
            return _apart(step.measurement, than.measurement, objective)
        assert step.measurement.plan is not None and than.measurement.plan is not None
        speed = measurer.duel(
            than.measurement.plan,
            step.measurement.plan,
            encoder_only=objective == "rtf-encoder",
            rounds=settings.duel_rounds,
            progress=progress,
            cancel=cancel,
        )
        step.time_ratio = 1.0 / speed.ratio
        step.vs_kept_ci = speed.interval.to_json()
        return speed.interval.low > 1.0

    step_setting = settings.quant.decoder_step
    current = evaluate({}, settings.engines[0], "seed: float32")
    current.accepted = True
    for scheme in sens.schemes:
        assignment = {u.name: scheme for u in chosen if scheme in u.schemes}
        engines = settings.engines if uses_engine(scheme) else settings.engines[:1]
        for engine in engines:
            step = evaluate(assignment, engine, f"seed: all {scheme} ({engine})")
            if better(step, current):
                current.accepted, step.accepted, current = False, True, step
    for name, mapped in preset_assignments(chosen, tree, settings.quant):
        int8 = any(uses_engine(s) for s in mapped.values())
        for engine in settings.engines if int8 else settings.engines[:1]:
            if plan_key(mapped, engine, step_setting) not in tried:
                step = evaluate(mapped, engine, f"seed: preset {name} ({engine})")
                if better(step, current):
                    current.accepted, step.accepted, current = False, True, step
    while len(steps) < settings.max_evals:
        moves = [
            m
            for m in candidate_moves(chosen, current.assignment, est, budget)
            if (m.units, m.scheme) not in rejected
            and plan_key(apply_move(current.assignment, m), current.engine, step_setting)
            not in tried
        ]
        if not moves:
            break
        move = moves[0]
        step = evaluate(apply_move(current.assignment, move), current.engine, move.label)
        if better(step, current):
            left = {current.assignment.get(unit, "none") for unit in move.units}
            rejected.update((move.units, scheme) for scheme in left)  # no way back
            step.accepted, current = True, step
        else:
            rejected.add((move.units, move.scheme))
    for engine in settings.engines:
        if plan_key(current.assignment, engine, step_setting) in tried:
            continue
        step = evaluate(current.assignment, engine, f"engine -> {engine}")
        if better(step, current):
            step.accepted, current = True, step
    if step_setting == "native" and refusal(model.mods, model.source) is None:
        step = evaluate(current.assignment, current.engine, SCRIPTED_MOVE, "scripted")
        if better(step, current):
            step.accepted, current = True, step
    report(progress, len(steps), len(steps), "search")
    measurer.release()
    best_plan = replace(current.measurement.plan or Plan(), name=f"search-{settings.objective}")
    evaluator = PlanMeasurer(
        model, splits.evaluation, bench, history, exclude=splits.union, executor=executor
    )
    evaluator.kind, evaluator.group_id = "search", group
    evaluation_baseline = evaluator.baseline(progress, cancel)
    evaluation = evaluator.measure(
        best_plan, "found plan", "evaluation", progress=progress, cancel=cancel
    )
    return SearchResult(
        plan=best_plan,
        assignment=current.assignment,
        settings=settings,
        search=current.measurement,
        search_baseline=sens.baseline,
        evaluation=evaluation,
        evaluation_baseline=evaluation_baseline,
        steps=steps,
        sensitivity=sens,
        calibration_ids=measurer.calibration_ids() or evaluator.calibration_ids(),
        eval_ids=splits.evaluation.ids,
    )
