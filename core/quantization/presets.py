"""Plan validation against a model's tree, and the built-in presets defined by path patterns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from speechquant.core.errors import PlanError
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import ModuleNode, ModuleTree
from speechquant.core.quantization.validation import validate_plan

AUTO = "auto"


@dataclass(frozen=True)
class MeasuredSpeed:
    """One scheme's speed against float32 on this machine (from the doctor), best engine."""

    speedup: float
    lower: float
    engine: str | None = None


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
            "transformer layers and head, ctc_lin and the positional conv left float. On "
            "attentional encoder-decoders the same split: static CNN front end, dynamic LSTM/GRU "
            "and transformer layers (language model included), output layers float.",
            (
                ("*wav2vec2.model.feature_extractor", "static"),
                ("*wav2vec2.model.feature_projection", "static"),
                ("*wav2vec2.model.encoder.layers", "dynamic"),
                ("encoder.enc", "dynamic"),
                ("whisper.model.encoder.conv1", "static"),
                ("whisper.model.encoder.conv2", "static"),
                ("whisper.model.encoder.layers", "dynamic"),
                ("whisper.model.decoder.layers", "dynamic"),
                ("encoder.model.CNN", "static"),
                ("encoder.model.RNN", "dynamic"),
                ("encoder.model.DNN", "dynamic"),
                ("decoder.dec", "dynamic"),
                ("lm_model.rnn", "dynamic"),
                ("pre_transformer", "static"),
                ("transformer.encoder.layers", "dynamic"),
                ("transformer.decoder.layers", "dynamic"),
                ("lm_model.encoder.layers", "dynamic"),
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
            "embeddings and the output projection stay float32. On attentional encoder-decoders: "
            "the encoder (a conformer's feed-forward and convolution modules: its attention "
            "computes in float32), the decoder's RNN or layers and the language model's layers.",
            (
                ("*wav2vec2.model", "bf16"),
                ("encoder.enc", "bf16"),
                ("whisper.model.encoder", "bf16"),
                ("whisper.model.decoder.layers", "bf16"),
                ("encoder.model", "bf16"),
                ("decoder.dec.rnn", "bf16"),
                ("lm_model.rnn", "bf16"),
                ("pre_transformer", "bf16"),
                ("transformer.encoder.layers.*.ffn_module1", "bf16"),
                ("transformer.encoder.layers.*.convolution_module", "bf16"),
                ("transformer.encoder.layers.*.ffn_module2", "bf16"),
                ("transformer.decoder.layers", "bf16"),
                ("lm_model.encoder.layers", "bf16"),
            ),
        ),
        Preset(
            AUTO,
            "Per unit family of the tutorial's mix, the fastest scheme measured on this machine "
            "(speechquant doctor) whose whole speed-up interval is above 1; families where none "
            "is faster stay float. ctc_lin, embeddings and output heads stay float.",
            (),
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


def _family_patterns() -> list[str]:
    """The unit families ``auto`` chooses for: the tutorial's patterns, in its order."""
    return [pattern for pattern, _scheme in PRESETS["tutorial"].rules]


def auto_rules(
    speeds: Mapping[str, MeasuredSpeed],
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """Rules for ``auto``: per family the candidate schemes, fastest measured first.

    Only schemes measured faster than float32 with the whole interval above 1 are candidates;
    the engine is the best one of the fastest engine-dependent candidate.
    """
    faster = sorted(
        ((name, speed) for name, speed in speeds.items() if speed.lower > 1),
        key=lambda item: -item[1].speedup,
    )
    rules = tuple((pattern, name) for pattern in _family_patterns() for name, _ in faster)
    engine = next((speed.engine for _, speed in faster if speed.engine), None)
    return rules, engine


def make_preset(
    name: str,
    tree: ModuleTree,
    settings: QuantSettings | None = None,
    *,
    speeds: Mapping[str, MeasuredSpeed] | None = None,
) -> Plan:
    """The plan preset ``name`` gives for the model behind ``tree``.

    ``auto`` needs ``speeds``: each scheme's measured speed on this machine (the doctor's).
    """
    if name not in PRESETS:
        raise PlanError(f"unknown preset '{name}'; use one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    rules = preset.rules
    if name == AUTO:
        if speeds is None:
            raise PlanError(
                "the auto preset needs this machine's measured scheme speeds; measure them "
                "with speechquant doctor (or Help > About this machine) first"
            )
        rules, engine = auto_rules(speeds)
        if engine and settings is None:
            settings = QuantSettings(engine=engine)
        if not rules:
            return Plan(entries={}, settings=settings or QuantSettings(), name=name)
    entries: dict[str, str] = {}
    for pattern, scheme in rules:
        for node in _topmost(tree.root, pattern, scheme):
            if not any(
                node.path == p or node.path.startswith(p + ".") or p.startswith(node.path + ".")
                for p in entries
            ):
                entries[node.path] = scheme
    if rules and not entries and name != AUTO:
        raise PlanError(f"preset '{name}' matches no module of this model; write a plan by hand")
    plan = Plan(entries=entries, settings=settings or QuantSettings(), name=name)
    validate_plan(plan, tree)
    return plan
