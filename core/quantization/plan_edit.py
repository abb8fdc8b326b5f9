"""Editing a plan one module at a time, with the rules the tree editor and the CLI share."""

from __future__ import annotations

from speechquant.core.errors import PlanError
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import preset_names
from speechquant.core.quantization.schemes import get_scheme
from speechquant.core.quantization.tree import ModuleTree
from speechquant.core.quantization.validation import validate_plan


def with_entry(
    plan: Plan, tree: ModuleTree, path: str, scheme: str | None
) -> tuple[Plan, list[str]]:
    """``plan`` with ``path`` set to ``scheme`` (None/"" removes the entry: inherit again).

    A wrapping scheme (static, bf16) quantizes its subtree as one block, so entries inside it are
    dropped and returned. Raises :class:`PlanError` when the result would not be a valid plan.
    """
    if path not in tree or not path:
        raise PlanError(f"this model has no module '{path}'")
    entries = dict(plan.entries)
    removed: list[str] = []
    if not scheme:
        entries.pop(path, None)
    else:
        verdict = tree[path].verdicts[get_scheme(scheme).name]
        if not verdict.applies:
            raise PlanError(f"scheme '{scheme}' does not apply to '{path}': {verdict.reason}")
        for other, other_scheme in entries.items():
            if path.startswith(other + ".") and get_scheme(other_scheme).wraps_root:
                raise PlanError(
                    f"'{path}' sits inside the {other_scheme} block '{other}', which is "
                    f"quantized as a whole; change '{other}' first"
                )
        entries[path] = scheme
        if get_scheme(scheme).wraps_root:
            removed = sorted(p for p in entries if p.startswith(path + "."))
            for inner in removed:
                del entries[inner]
    name = "custom" if plan.name in preset_names() else plan.name
    edited = Plan(entries=entries, settings=plan.settings, name=name)
    validate_plan(edited, tree)
    return edited, removed
