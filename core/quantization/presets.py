"""Plan validation against a model's tree, and the built-in presets defined by path patterns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

from speechquant.core.errors import PlanError
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import ModuleNode, ModuleTree
from speechquant.core.quantization.validation import validate_plan


@dataclass(frozen=True)
class Preset:
    """Rules (path pattern, scheme); each rule takes the topmost matching modules it applies to."""

    name: str
    description: str
    rules: tuple[tuple[str, str], ...]


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "tutorial",
            "The SpeechBrain tutorial's mix: static conv front end and feature projection, dynamic "
            "transformer layers and head, ctc_lin and the positional conv left float.",
            (
                ("*wav2vec2.model.feature_extractor", "static"),
                ("*wav2vec2.model.feature_projection", "static"),
                ("*wav2vec2.model.encoder.layers", "dynamic"),
                ("encoder.enc", "dynamic"),
                ("whisper.model.encoder.conv1", "static"),
                ("whisper.model.encoder.conv2", "static"),
                ("whisper.model.encoder.layers", "dynamic"),
                ("whisper.model.decoder.layers", "dynamic"),
            ),
        ),
        Preset(
            "all-dynamic",
            "Dynamic int8 on every Linear/LSTM/GRU layer of the model.",
            (("*", "dynamic"),),
        ),
        Preset(
            "bf16",
            "bfloat16 weights and compute for the backbone (and wav2vec2's head); ctc_lin, "
            "embeddings and the output projection stay float32.",
            (
                ("*wav2vec2.model", "bf16"),
                ("encoder.enc", "bf16"),
                ("whisper.model.encoder", "bf16"),
                ("whisper.model.decoder.layers", "bf16"),
            ),
        ),
        Preset("none", "No quantization: the float32 baseline.", ()),
    )
}


def preset_names() -> list[str]:
    return list(PRESETS)


def _topmost(node: ModuleNode, pattern: str, scheme: str) -> Iterator[ModuleNode]:
    for child in node.children:
        if fnmatchcase(child.path, pattern) and child.verdicts[scheme].applies:
            yield child
        else:
            yield from _topmost(child, pattern, scheme)


def make_preset(name: str, tree: ModuleTree, settings: QuantSettings | None = None) -> Plan:
    """The plan preset ``name`` gives for the model behind ``tree``."""
    if name not in PRESETS:
        raise PlanError(f"unknown preset '{name}'; use one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    entries: dict[str, str] = {}
    for pattern, scheme in preset.rules:
        for node in _topmost(tree.root, pattern, scheme):
            if not any(
                node.path.startswith(p + ".") or p.startswith(node.path + ".") for p in entries
            ):
                entries[node.path] = scheme
    if preset.rules and not entries:
        raise PlanError(f"preset '{name}' matches no module of this model; write a plan by hand")
    plan = Plan(entries=entries, settings=settings or QuantSettings(), name=name)
    validate_plan(plan, tree)
    return plan
