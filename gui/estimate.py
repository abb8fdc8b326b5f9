"""What a plan does to a model, estimated from the module tree alone (no quantization run).

Rules of thumb: dynamic qint8 keeps ~1/4 of a target layer's bytes (float16 ~1/2), static int8
~1/4 of each Linear/Conv, bf16 ~1/2 of every float tensor in the subtree, a tied output
projection set to dynamic or bf16 ~1/2 (int8 rows plus the packed int8 projection). Biases, scales and
packing overhead are ignored, so the figure is an estimate; the benchmark measures the real size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.tree import ModuleNode, ModuleTree

STATIC_CLASSES = frozenset({"Linear", "Conv1d", "Conv2d", "Conv3d"})
FLOAT_BYTES = 4


@dataclass
class SchemeCount:
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


def _is_tied_head(node: ModuleNode) -> bool:
    """An embedding that takes ``dynamic``: core marks tied output projections that way."""
    verdict = node.verdicts.get("dynamic")
    return node.class_name == "Embedding" and verdict is not None and verdict.applies


def _layer_factor(node: ModuleNode, scheme: str, plan: Plan) -> float | None:
    """The fraction of a leaf's bytes kept under ``scheme``; None when it stays as is."""
    settings = plan.settings
    if _is_tied_head(node) and scheme == "dynamic":
        return 0.5 if plan.entries.get(node.path) == scheme else None
    if scheme == "dynamic" and node.class_name in settings.dynamic_targets:
        return 0.25 if settings.dynamic_dtype == "qint8" else 0.5
    if scheme == "static" and node.class_name in STATIC_CLASSES:
        return 0.25
    if scheme == "bf16" and node.total_bytes:
        return 0.5
    return None


def estimate_plan(tree: ModuleTree, plan: Plan) -> PlanEstimate:
    """Entries and converted layers per scheme, and the model size the plan should give."""
    counts: dict[str, SchemeCount] = {}
    for scheme in plan.entries.values():
        counts.setdefault(scheme, SchemeCount()).entries += 1
    saved = 0.0
    for node in tree.nodes():
        scheme, _ = plan.effective(node.path)
        if scheme == "none":
            continue
        if node.children:
            if scheme == "bf16" and node.own_params:
                saved += node.own_params * FLOAT_BYTES * 0.5
            continue
        factor = _layer_factor(node, scheme, plan)
        if factor is None:
            continue
        counts.setdefault(scheme, SchemeCount()).layers += 1
        saved += node.total_bytes * (1.0 - factor)
    total = tree.root.total_bytes
    return PlanEstimate(total, max(0, int(round(total - saved))), counts)


def human_bytes(size: float | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def summary_text(estimate: PlanEstimate) -> str:
    """One line such as ``dynamic: 1 entry, 13 layers · size 1.9 MB → ≈0.6 MB (3.1× smaller)``."""
    parts = []
    for scheme, count in sorted(estimate.schemes.items()):
        if scheme == "none":
            parts.append(f"none: {count.entries} kept float")
            continue
        entries = f"{count.entries} entr{'y' if count.entries == 1 else 'ies'}"
        layers = f"{count.layers} layer{'' if count.layers == 1 else 's'}"
        parts.append(f"{scheme}: {entries}, {layers}")
    if not parts:
        parts.append("no module quantized (float baseline)")
    size = (
        f"size {human_bytes(estimate.float_bytes)} → ≈{human_bytes(estimate.estimated_bytes)}"
        f" ({estimate.ratio:.1f}× smaller)"
    )
    return " · ".join([*parts, size])
