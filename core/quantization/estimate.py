"""What a plan does to a model's size, estimated from the module tree alone (no quantization run).

Each scheme says which fraction of a module's bytes it keeps (``Scheme.kept_fraction``): dynamic
qint8 ~1/4 of a target layer (float16 ~1/2), static int8 ~1/4 of each Linear/Conv, bf16 ~1/2 of
every float tensor in the subtree, a tied output projection named by a dynamic or bf16 entry ~1/2
(int8 rows plus the packed int8 projection, or one bfloat16 matrix). Biases, scales and packing
overhead are ignored, so the figure is an estimate; the benchmark measures the real size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from speechquant.core.formatting import format_bytes
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import FLOAT_SCHEME, get_scheme
from speechquant.core.quantization.tree import ModuleNode, ModuleTree

FLOAT_BYTES = 4


@dataclass
class SchemeCount:
    """Plan entries naming a scheme, and the layers it converts."""

    entries: int = 0
    layers: int = 0


@dataclass
class PlanEstimate:
    float_bytes: int
    estimated_bytes: int
    schemes: dict[str, SchemeCount] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.float_bytes / self.estimated_bytes if self.estimated_bytes else 1.0


def kept_fraction(node: ModuleNode, plan: Plan) -> float | None:
    """The fraction of ``node``'s bytes its effective scheme keeps; None where it acts not."""
    name, origin = plan.effective(node.path)
    if name == FLOAT_SCHEME:
        return None
    scheme = get_scheme(name)
    own_head = node.is_tied_head and origin == node.path and scheme.supports_tied_head
    return scheme.kept_fraction(node.class_name, plan.settings, tied_head=own_head)


def acting_paths(tree: ModuleTree, plan: Plan) -> set[str]:
    """Paths where the effective scheme converts something: the leaves the estimate counts,
    wrapping roots with parameters of their own, and the modules above them."""
    acting: set[str] = set()

    def visit(node: ModuleNode) -> bool:
        below = [visit(child) for child in node.children]
        name, _ = plan.effective(node.path)
        if name == FLOAT_SCHEME:
            return False
        if node.children:
            acts = any(below) or (get_scheme(name).wraps_root and node.own_params > 0)
        else:
            acts = kept_fraction(node, plan) is not None and bool(node.total_bytes)
        if acts:
            acting.add(node.path)
        return acts

    for child in tree.root.children:
        visit(child)
    return acting


def estimate_plan(tree: ModuleTree, plan: Plan) -> PlanEstimate:
    """Entries and converted layers per scheme, and the model size the plan should give.

    Leaves count with all their bytes; inner modules with their own parameters only (as float32).
    """
    counts: dict[str, SchemeCount] = {}
    for name in plan.entries.values():
        counts.setdefault(name, SchemeCount()).entries += 1
    saved = 0.0
    for node in tree.nodes():
        name, _ = plan.effective(node.path)
        kept = kept_fraction(node, plan)
        if kept is None:
            continue
        if node.children:
            saved += node.own_params * FLOAT_BYTES * (1.0 - kept)
            continue
        if not node.total_bytes:
            continue
        counts.setdefault(name, SchemeCount()).layers += 1
        saved += node.total_bytes * (1.0 - kept)
    total = tree.root.total_bytes
    return PlanEstimate(total, max(0, int(round(total - saved))), counts)


def summary_text(estimate: PlanEstimate) -> str:
    """One line such as ``dynamic: 1 entry, 13 layers · size 1.9 MB → ≈0.6 MB (3.1× smaller)``."""
    parts = []
    for name, count in sorted(estimate.schemes.items()):
        if name == FLOAT_SCHEME:
            parts.append(f"{name}: {count.entries} kept float")
            continue
        entries = f"{count.entries} entr{'y' if count.entries == 1 else 'ies'}"
        layers = f"{count.layers} layer{'' if count.layers == 1 else 's'}"
        parts.append(f"{name}: {entries}, {layers}")
    if not parts:
        parts.append("no module quantized (float baseline)")
    size = (
        f"size {format_bytes(estimate.float_bytes)} → ≈{format_bytes(estimate.estimated_bytes)}"
        f" ({estimate.ratio:.1f}× smaller)"
    )
    return " · ".join([*parts, size])
