"""The moves of the plan search and their estimates from the sensitivity results."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from speechquant.core.errors import PlanError
from speechquant.core.evaluation.results import Comparison
from speechquant.core.quantization.presets import PRESETS, make_preset
from speechquant.core.quantization.schemes import uses_engine
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import ModuleTree
from speechquant.core.search.sensitivity import SensitivityResult
from speechquant.core.search.units import Unit, plan_assignment

_COST_FLOOR = 0.01


@dataclass(frozen=True)
class Move:
    """Set ``units`` to ``scheme``; ``gain`` and ``cost`` are estimated from single units."""

    units: tuple[str, ...]
    scheme: str
    gain: float
    cost: float
    family: bool
    name: str
    size: int = 0

    @property
    def label(self) -> str:
        return f"{self.name} -> {self.scheme}"


class Estimates:
    """Single-unit gains (objective saved) and costs (ΔWER) from the sensitivity results."""

    def __init__(self, sens: SensitivityResult, objective: str) -> None:
        self.sens = sens
        self.objective = objective
        self.base = sens.baseline.objective(objective)

    def gain(self, unit: str, scheme: str) -> float:
        """Objective saved by this unit alone; a speed gain whose interval includes no change
        counts as none (sizes are exact)."""
        row = self.sens.row(unit, scheme)
        if row is None:
            return 0.0
        c = row.single.comparison
        if self.objective != "size" and (c is None or not _speed_resolved(c, self.objective)):
            return 0.0
        return self.base - row.single.objective(self.objective)

    def cost(self, unit: str, scheme: str) -> float:
        row = self.sens.row(unit, scheme)
        return 0.0 if row is None else max(0.0, row.single.delta_wer)


def _speed_resolved(c: Comparison, objective: str) -> bool:
    ci = c.speedup_ci if objective == "rtf" else c.speedup_encoder_ci
    return bool(ci) and not ci[0] <= 1.0 <= ci[1]


def candidate_moves(
    units: Sequence[Unit], current: dict[str, str], est: Estimates, budget: float
) -> list[Move]:
    """The moves from ``current``, in the order the search tries them (ALGORITHM, step 3)."""
    groups: dict[str, list[Unit]] = {}
    for unit in units:
        if unit.family is not None:
            groups.setdefault(unit.family, []).append(unit)
    candidates: list[tuple[tuple[Unit, ...], bool]] = [
        (tuple(members), True) for members in groups.values() if len(members) > 1
    ]
    candidates += [((unit,), False) for unit in units]
    moves = []
    for members, family in candidates:
        for scheme in members[0].schemes:
            if any(scheme not in u.schemes for u in members):
                continue
            if all(current.get(u.name, "none") == scheme for u in members):
                continue
            if any(est.cost(u.name, scheme) > budget for u in members):
                continue
            gain = sum(
                est.gain(u.name, scheme) - est.gain(u.name, current.get(u.name, "none"))
                for u in members
            )
            cost = sum(
                est.cost(u.name, scheme) - est.cost(u.name, current.get(u.name, "none"))
                for u in members
            )
            name = members[0].family if family else members[0].name
            names = tuple(u.name for u in members)
            size = sum(u.bytes for u in members)
            moves.append(Move(names, scheme, gain, cost, family, name or names[0], size))
    moves.sort(
        key=lambda m: (
            not m.family,
            m.gain <= 0,
            -m.gain / max(m.cost, _COST_FLOOR) if m.gain > 0 else -m.size,
            -m.gain,
        )
    )
    return moves


def plan_key(
    assignment: dict[str, str], engine: str, decoder_step: str = "native"
) -> tuple[Any, ...]:
    engine_matters = any(uses_engine(s) for s in assignment.values())
    return (tuple(sorted(assignment.items())), engine if engine_matters else None, decoder_step)


def preset_assignments(
    units: Sequence[Unit], tree: ModuleTree, quant: QuantSettings
) -> Iterator[tuple[str, dict[str, str]]]:
    """The built-in presets that map onto ``units`` (see :func:`~.units.plan_assignment`)."""
    for name in PRESETS:
        if name == "none":
            continue
        try:
            plan = make_preset(name, tree, quant)
        except PlanError:
            continue
        mapped = plan_assignment(units, plan, tree)
        if mapped:
            yield name, mapped


def apply_move(assignment: dict[str, str], move: Move) -> dict[str, str]:
    return {**assignment, **{unit: move.scheme for unit in move.units}}
