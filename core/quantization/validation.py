"""Checking a plan against a model's module tree, and the hardware warnings it deserves."""

from __future__ import annotations

from collections.abc import Mapping

from speechquant.core.errors import PlanError
from speechquant.core.machine import CpuInfo
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import FLOAT_SCHEME, get_scheme
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


def plan_warnings(
    plan: Plan, cpu: CpuInfo, measured_speedups: Mapping[str, float] | None = None
) -> list[str]:
    """Warnings (not errors) about the schemes ``plan`` uses on ``cpu``, one line each.

    ``measured_speedups`` (scheme -> float32 time over the scheme's time, measured on this
    machine) takes precedence over what the CPU's features suggest.
    """
    measured = measured_speedups or {}
    warnings = []
    for name in sorted(set(plan.entries.values())):
        text = get_scheme(name).advice(cpu, measured.get(name))
        if text:
            warnings.append(text)
    return warnings
