"""Units: the groups of modules that sensitivity analysis measures and plan search assigns schemes to.

A :class:`Unit` is one or more disjoint module paths that always get the same scheme. The default
grouping knows the common SpeechBrain backbones:

- wav2vec2 (``….wav2vec2.model``): ``feature_extractor``, ``feature_projection``,
  ``encoder.pos_conv_embed`` and each ``encoder.layers.N``; the modules outside the backbone
  (``encoder.enc``, ``ctc_lin``…) are units of their own;
- Whisper (``whisper.model``): ``encoder.conv1``, ``encoder.conv2``, each ``encoder.layers.N``,
  each ``decoder.layers.N`` and ``decoder.embed_tokens`` (the tied output projection, see
  :mod:`.heads`);
- SpeechBrain's attentional encoder-decoders: a ``TransformerASR`` (``transformer``: the input
  projection, each conformer/transformer encoder layer, the target embedding and each decoder
  layer), a ``TransformerLM`` or ``RNNLM`` (``lm_model``: embedding, each layer or the LSTM,
  output), a CRDNN encoder (``encoder.model``: each CNN block, the LSTM, each DNN block) and an
  attentional RNN beam search (``decoder``: embedding, GRU decoder, output layer);
- anything else: the modules at depth 2 (see :func:`units_at_depth`).

Modules whose weights are already covered by an earlier unit (SpeechBrain's searchers hold the
model a second time) are never units; a container partly covered (``asr_model``, which holds the
encoder again beside the output layers) is looked into. :func:`merge_families` turns repeated siblings (all
encoder layers, say) into one unit, for big models where per-layer measurement costs too much.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from speechquant.core.errors import PlanError
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import ModuleNode, ModuleTree, build_tree

DEFAULT_DEPTH = 2

# (how a backbone's root path ends, a child that must exist, the unit patterns under it;
# "X.*" means each child of X)
BACKBONES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "wav2vec2.model",
        "feature_extractor",
        ("feature_extractor", "feature_projection", "encoder.pos_conv_embed", "encoder.layers.*"),
    ),
    (
        "whisper.model",
        "encoder",
        (
            "encoder.conv1",
            "encoder.conv2",
            "encoder.layers.*",
            "decoder.layers.*",
            "decoder.embed_tokens",
        ),
    ),
    # SpeechBrain's TransformerASR (conformer or transformer encoder, transformer decoder)
    (
        "transformer",
        "custom_tgt_module",
        ("custom_src_module", "encoder.layers.*", "custom_tgt_module", "decoder.layers.*"),
    ),
    ("lm_model", "output_proj", ("custom_src_module", "encoder.layers.*", "output_proj")),
    ("encoder.model", "RNN", ("CNN.*", "RNN", "DNN.*")),
    ("decoder", "dec", ("emb", "dec", "fc")),
    ("lm_model", "rnn", ("embedding", "rnn", "dnn", "out")),
)
_SHORT_PREFIXES = (".wav2vec2.model.", "wav2vec2.model.", "whisper.model.")


@dataclass(frozen=True)
class Unit:
    """Module paths that share one scheme, and the schemes applicable to all of them."""

    name: str
    paths: tuple[str, ...]
    class_name: str
    params: int
    bytes: int
    schemes: tuple[str, ...]
    family: str | None = None
    """Parent path and class shared with sibling units (all layers of one stack), if any."""

    def entries(self, scheme: str) -> dict[str, str]:
        return {path: scheme for path in self.paths}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "paths": list(self.paths),
            "class": self.class_name,
            "params": self.params,
            "bytes": self.bytes,
            "schemes": list(self.schemes),
            "family": self.family,
        }


def short_name(path: str) -> str:
    """``encoder.wav2vec2.model.encoder.layers.3`` -> ``encoder.layers.3``."""
    for prefix in _SHORT_PREFIXES:
        if prefix in path:
            rest = path.split(prefix, 1)[1]
            return rest or path
    return path


def _unit(nodes: Sequence[ModuleNode], name: str | None = None) -> Unit:
    schemes = [
        scheme
        for scheme in nodes[0].verdicts
        if scheme != "none" and all(node.verdicts[scheme].applies for node in nodes)
    ]
    classes = sorted({node.class_name for node in nodes})
    return Unit(
        name=name or short_name(nodes[0].path),
        paths=tuple(node.path for node in nodes),
        class_name="/".join(classes),
        params=sum(node.total_params for node in nodes),
        bytes=sum(node.total_bytes for node in nodes),
        schemes=tuple(schemes),
    )


class _Collector:
    """Keeps units whose weights no earlier unit holds."""

    def __init__(self, mods: nn.Module) -> None:
        self.modules = dict(mods.named_modules(remove_duplicate=False))
        self.seen: set[int] = set()
        self.units: list[Unit] = []

    def tensor_ids(self, path: str) -> set[int]:
        module = self.modules[path]
        return {id(t) for t in [*module.parameters(), *module.buffers()]}

    def add(self, node: ModuleNode) -> None:
        ids = self.tensor_ids(node.path)
        if not ids or ids & self.seen or node.path == "":
            return
        unit = _unit([node])
        if unit.schemes:
            self.seen |= ids
            self.units.append(unit)

    def shared(self, node: ModuleNode) -> bool:
        ids = self.tensor_ids(node.path)
        return bool(ids) and ids <= self.seen

    def partly_shared(self, node: ModuleNode) -> bool:
        ids = self.tensor_ids(node.path)
        return bool(ids & self.seen) and not ids <= self.seen


def _expand(node: ModuleNode, pattern: str, tree: ModuleTree) -> list[ModuleNode]:
    if pattern.endswith(".*"):
        parent = f"{node.path}.{pattern[:-2]}"
        return list(tree[parent].children) if parent in tree else []
    path = f"{node.path}.{pattern}"
    return [tree[path]] if path in tree else []


def _backbone(node: ModuleNode) -> tuple[str, ...] | None:
    for suffix, child, patterns in BACKBONES:
        if (node.path == suffix or node.path.endswith("." + suffix)) and any(
            c.name == child for c in node.children
        ):
            return patterns
    return None


def _has_backbone(node: ModuleNode) -> bool:
    return any(_backbone(n) is not None for n in node.walk())


def _family_key(unit: Unit) -> tuple[str, str] | None:
    if len(unit.paths) != 1 or "." not in unit.paths[0]:
        return None
    return unit.paths[0].rsplit(".", 1)[0], unit.class_name


def _finish(units: list[Unit]) -> list[Unit]:
    """Mark families: two or more units with the same parent path and class."""
    names = [unit.name for unit in units]
    units = [
        replace(unit, name=".".join(unit.paths)) if names.count(unit.name) > 1 else unit
        for unit in units
    ]
    groups: dict[tuple[str, str], list[str]] = {}
    for unit in units:
        key = _family_key(unit)
        if key is not None:
            groups.setdefault(key, []).append(unit.paths[0].rsplit(".", 1)[1])
    result = []
    for unit in units:
        key = _family_key(unit)
        family = None
        if key is not None and len(groups[key]) > 1:
            names = groups[key]
            parent = short_name(key[0])
            if all(name.isdigit() for name in names):
                family = f"{parent}.{names[0]}-{names[-1]}"
            else:
                family = f"{parent}.{{{','.join(names)}}}"
        result.append(replace(unit, family=family))
    return result


def default_units(mods: nn.Module, tree: ModuleTree | None = None) -> list[Unit]:
    """The default grouping (see the module docstring); depth 2 where no backbone is known."""
    tree = tree or build_tree(mods)
    if not any(_has_backbone(child) for child in tree.root.children):
        return units_at_depth(mods, DEFAULT_DEPTH, tree)
    collector = _Collector(mods)

    def visit(node: ModuleNode) -> None:
        patterns = _backbone(node)
        if patterns is not None:
            for pattern in patterns:
                for found in _expand(node, pattern, tree):
                    collector.add(found)
        elif _has_backbone(node) or collector.partly_shared(node):
            for child in node.children:
                visit(child)
        elif not collector.shared(node):
            collector.add(node)

    for child in tree.root.children:
        visit(child)
    return _finish(collector.units)


def units_at_depth(mods: nn.Module, depth: int, tree: ModuleTree | None = None) -> list[Unit]:
    """Each module at ``depth`` (1 = the top-level modules) with weights and a scheme.

    Shallower leaves with weights count too; a ``ModuleList`` at ``depth`` is replaced by its items.
    """
    if depth < 1:
        raise PlanError(f"--depth must be at least 1, got {depth}")
    tree = tree or build_tree(mods)
    collector = _Collector(mods)

    def visit(node: ModuleNode) -> None:
        if (node.depth >= depth and node.class_name != "ModuleList") or not node.children:
            collector.add(node)
            return
        for child in node.children:
            visit(child)

    for child in tree.root.children:
        visit(child)
    return _finish(collector.units)


def units_from_paths(
    mods: nn.Module, paths: Iterable[str], tree: ModuleTree | None = None
) -> list[Unit]:
    """One unit per given module path (they must exist and must not nest)."""
    tree = tree or build_tree(mods)
    paths = list(dict.fromkeys(paths))
    for path in paths:
        if path not in tree or not path:
            raise PlanError(
                f"unit '{path}' is not a module of this model; see 'speechquant tree SOURCE'"
            )
    for path in paths:
        for other in paths:
            if other.startswith(path + "."):
                raise PlanError(f"units '{path}' and '{other}' nest; give disjoint modules")
    units = [_unit([tree[path]]) for path in paths]
    empty = [u.name for u in units if not u.schemes]
    if empty:
        raise PlanError(f"no scheme applies to unit(s) {', '.join(empty)}; choose other modules")
    return _finish(units)


def merge_families(units: Sequence[Unit], tree: ModuleTree) -> list[Unit]:
    """One unit per family (e.g. all encoder layers together), other units unchanged."""
    merged: list[Unit] = []
    done: set[str] = set()
    for unit in units:
        if unit.family is None:
            merged.append(unit)
        elif unit.family not in done:
            done.add(unit.family)
            members = [u for u in units if u.family == unit.family]
            nodes = [tree[p] for u in members for p in u.paths]
            merged.append(_unit(nodes, name=unit.family))
    return merged


def restrict_schemes(units: Sequence[Unit], schemes: Sequence[str]) -> list[Unit]:
    """Keep only ``schemes`` on each unit; units left without a scheme are dropped."""
    wanted = [s for s in schemes if s != "none"]
    return [
        replace(unit, schemes=tuple(s for s in unit.schemes if s in wanted))
        for unit in units
        if any(s in wanted for s in unit.schemes)
    ]


def assignment_plan(
    units: Sequence[Unit],
    assignment: dict[str, str],
    settings: QuantSettings | None = None,
    name: str = "custom",
) -> Plan:
    """The plan giving each unit (by name) its scheme; units missing or ``none`` stay float."""
    by_name = {unit.name: unit for unit in units}
    entries: dict[str, str] = {}
    for unit_name, scheme in assignment.items():
        if scheme != "none":
            entries.update(by_name[unit_name].entries(scheme))
    return Plan(entries=entries, settings=settings or QuantSettings(), name=name)


def plan_assignment(units: Sequence[Unit], plan: Plan, tree: ModuleTree) -> dict[str, str] | None:
    """``plan`` as a unit assignment (unit name -> scheme), or None where it cannot be one.

    None when an entry splits a unit, or gives a unit a scheme outside its (searched) schemes
    that would change it; a scheme that would merely do nothing there (``dynamic`` on a conv
    front end) counts as ``none``. Modules outside every unit are not looked at.
    """
    assignment: dict[str, str] = {}
    for unit in units:
        schemes = {plan.effective(path)[0] for path in unit.paths}
        inner = any(e.startswith(p + ".") for e in plan.entries for p in unit.paths)
        if len(schemes) != 1 or inner:
            return None
        scheme = schemes.pop()
        if scheme in unit.schemes:
            assignment[unit.name] = scheme
        elif scheme != "none":
            verdicts = [tree[path].verdicts[scheme] for path in unit.paths]
            if any(v.applies or v.blocking for v in verdicts):
                return None
    return assignment
