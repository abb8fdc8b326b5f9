"""Checking a plan against a model's module tree, and the hardware warnings it deserves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from speechquant.core.errors import PlanError
from speechquant.core.machine import CpuInfo
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import FLOAT_SCHEME, get_scheme, uses_engine
from speechquant.core.quantization.tree import ModuleTree


def validate_plan(plan: Plan, tree: ModuleTree) -> None:
    """Raise :class:`PlanError` if ``plan`` does not fit the model behind ``tree``."""
    for path, scheme_name in plan.entries.items():
        if path not in tree or not path:
            raise PlanError(
                f"plan names module '{path}' which this model does not have; "
                "see 'speechquant tree SOURCE' for the paths"
            )
        verdict = tree[path].verdicts[scheme_name]
        if not verdict.applies:
            raise PlanError(f"scheme '{scheme_name}' does not apply to '{path}': {verdict.reason}")
    for path, scheme_name in plan.entries.items():
        if scheme_name == FLOAT_SCHEME:
            continue
        if get_scheme(scheme_name).wraps_root:
            for other, other_scheme in plan.entries.items():
                if other.startswith(path + "."):
                    raise PlanError(
                        f"'{other}' ({other_scheme}) sits inside the {scheme_name} subtree '{path}'; "
                        f"a {scheme_name} subtree is quantized as one block, so remove one of the two entries"
                    )


@dataclass(frozen=True)
class EngineSpeed:
    """One scheme under one quantized engine against float32 on this machine (the doctor's)."""

    scheme: str
    engine: str
    speedup: float
    low: float
    high: float

    def text(self) -> str:
        return f"{self.engine} {self.speedup:.2f}x [95 %: {self.low:.2f}-{self.high:.2f}]"


def engine_warnings(plan: Plan, speeds: Sequence[EngineSpeed]) -> list[str]:
    """One line per engine-dependent scheme of ``plan`` that another engine clearly runs faster.

    Clearly: the other engine's whole 95 % interval lies above the plan engine's.
    """
    warnings = []
    for name in sorted(set(plan.entries.values())):
        if name == FLOAT_SCHEME or not uses_engine(name):
            continue
        rows = [s for s in speeds if s.scheme == name]
        mine = next((s for s in rows if s.engine == plan.settings.engine), None)
        best = max(rows, key=lambda s: s.speedup, default=None)
        if mine is None or best is None or best.low <= mine.high:
            continue
        warnings.append(
            f"{name}: engine {best.engine} is faster here than the plan's {mine.engine} "
            f"(float32 speed {best.text()} against {mine.text()}, measured by speechquant "
            f"doctor); set the engine to {best.engine} (--engine {best.engine})"
        )
    return warnings


def plan_warnings(
    plan: Plan,
    cpu: CpuInfo,
    measured_speedups: Mapping[str, float] | None = None,
    engine_speeds: Sequence[EngineSpeed] = (),
) -> list[str]:
    """Warnings (not errors) about the schemes ``plan`` uses on ``cpu``, one line each.

    ``measured_speedups`` (scheme -> float32 time over the scheme's time, measured on this
    machine) takes precedence over what the CPU's features suggest; ``engine_speeds`` (the
    same per engine) adds :func:`engine_warnings`.
    """
    measured = measured_speedups or {}
    warnings = []
    for name in sorted(set(plan.entries.values())):
        text = get_scheme(name).advice(cpu, measured.get(name))
        if text:
            warnings.append(text)
    return warnings + engine_warnings(plan, engine_speeds)
