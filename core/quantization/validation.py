"""Checking a plan against a model's module tree."""

from __future__ import annotations

from speechquant.core.errors import PlanError
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import get_scheme
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
        if scheme_name == "none":
            continue
        if get_scheme(scheme_name).wraps_root:
            for other, other_scheme in plan.entries.items():
                if other.startswith(path + "."):
                    raise PlanError(
                        f"'{other}' ({other_scheme}) sits inside the {scheme_name} subtree '{path}'; "
                        f"a {scheme_name} subtree is quantized as one block, so remove one of the two entries"
                    )
