"""Wall time of one transcription split into its stages, from cheap ``perf_counter`` probes.

:func:`instrumented` installs forward hooks and method wrappers on a model for the length of a
``with`` block and yields an :class:`UtteranceStages` that fills in while the model transcribes;
every probe is removed on exit. :func:`breakdown` turns it into disjoint rows that add up to the
wall time.

WhisperASR (SpeechBrain's Whisper and its greedy searcher):

- features: ``Whisper._get_mel`` (padding to 30 s, log-mel spectrogram)
- encoder forward: ``whisper.model.encoder``
- decoder steps (``searcher.forward_step``, one per generated token), of which the decoder
  layers (``whisper.model.decoder``: token and position embedding, layers, final norm), the
  logits head (the rest of ``Whisper.forward_decoder``: the tied output projection over the
  vocabulary) and the step's glue (token concatenation, suppression of tokens)
- search loop: the searcher's own work between steps (argmax, log-softmax, end checks, stacking)
- rest: tokenizer decoding and SpeechBrain/speechquant glue (wall time minus all of the above)

EncoderASR (wav2vec2 + CTC): conv front end, feature projection, transformer encoder (of which
the positional conv), ``enc`` and ``ctc_lin``; the rest is waveform normalisation, CTC greedy
decoding and the tokenizer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from speechquant.core.model.loaded import LoadedModel

#: (row label, module path pattern, label of the row it is part of) for wav2vec2 + CTC models.
CTC_STAGES: tuple[tuple[str, str, str | None], ...] = (
    ("conv front end", "*wav2vec2.model.feature_extractor", None),
    ("feature projection", "*wav2vec2.model.feature_projection", None),
    ("transformer encoder", "*wav2vec2.model.encoder", None),
    ("positional conv", "*wav2vec2.model.encoder.pos_conv_embed", "transformer encoder"),
    ("enc (DNN)", "encoder.enc", None),
    ("ctc_lin", "encoder.ctc_lin", None),
)
OUTSIDE_SEARCH = "decoder outside the search (language detection)"


@dataclass
class DecoderStep:
    """One ``forward_step`` of the Whisper greedy searcher."""

    seconds: float = 0.0
    forward_decoder: float = 0.0
    layers: float = 0.0
    tokens_in: int = 0
    """Tokens fed to the decoder layers (1 after the first step when the key/value cache works)."""


@dataclass
class UtteranceStages:
    """The probes' findings for one transcription (seconds by stage, decoder steps)."""

    interface: str
    wall: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    steps: list[DecoderStep] = field(default_factory=list)
    current: DecoderStep | None = None

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds

    @property
    def steps_seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


@dataclass(frozen=True)
class Row:
    """One line of a breakdown: seconds of a stage; ``part_of`` names the row it lies inside."""

    label: str
    seconds: float
    part_of: str | None = None


class _Probes:
    """Hooks and wrappers to take off again."""

    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []

    def module(
        self,
        module: nn.Module,
        done: Callable[[float], None],
        inputs: Callable[[tuple[Any, ...], dict[str, Any]], None] | None = None,
    ) -> None:
        """Time every call of ``module``; ``inputs(args, kwargs)`` sees its inputs first."""
        starts: list[float] = []

        def before(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if inputs is not None:
                inputs(args, kwargs)
            starts.append(time.perf_counter())

        def after(_: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            done(time.perf_counter() - starts.pop())

        handles = [
            module.register_forward_pre_hook(before, with_kwargs=True),
            module.register_forward_hook(after),
        ]
        self.undo.extend(handle.remove for handle in handles)

    def method(
        self,
        owner: Any,
        name: str,
        done: Callable[[float], None],
        before: Callable[[], None] | None = None,
    ) -> None:
        """Time every call of ``owner.name`` (an instance attribute shadows it until undone)."""
        own = vars(owner).get(name)
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if before is not None:
                before()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                done(time.perf_counter() - start)

        setattr(owner, name, timed)

        def restore() -> None:
            if own is not None:
                setattr(owner, name, own)
            else:
                delattr(owner, name)

        self.undo.append(restore)

    def close(self) -> None:
        for undo in reversed(self.undo):
            undo()
        self.undo.clear()


def _whisper_probes(model: LoadedModel, probes: _Probes, found: UtteranceStages) -> None:
    whisper, searcher = model.mods["whisper"], model.mods["decoder"]
    stepper = getattr(searcher, "model", None)
    if not callable(getattr(searcher, "forward_step", None)) or stepper is None:
        raise SystemExit(f"error: {model.source}: its decoder is not a Whisper step-wise searcher")

    def new_step() -> None:
        found.current = DecoderStep()

    def step_done(seconds: float) -> None:
        if found.current is not None:
            found.current.seconds = seconds
            found.steps.append(found.current)
            found.current = None

    def forward_decoder(seconds: float) -> None:
        if found.current is not None:
            found.current.forward_decoder += seconds

    def layers(seconds: float) -> None:
        if found.current is not None:
            found.current.layers += seconds
        else:
            found.add(OUTSIDE_SEARCH, seconds)

    def layer_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if found.current is not None and ids is not None:
            found.current.tokens_in += int(ids.shape[-1])

    probes.method(whisper, "_get_mel", lambda s: found.add("features", s))
    probes.module(whisper.model.encoder, lambda s: found.add("encoder", s))
    probes.module(searcher, lambda s: found.add("search", s))
    probes.method(searcher, "forward_step", step_done, before=new_step)
    probes.method(stepper, "forward_decoder", forward_decoder)
    probes.module(stepper.model.decoder, layers, inputs=layer_inputs)


def ctc_modules(mods: nn.Module) -> dict[str, nn.Module]:
    """The module each :data:`CTC_STAGES` row times (the first path matching its pattern)."""
    chosen: dict[str, nn.Module] = {}
    for label, pattern, _ in CTC_STAGES:
        for path, module in mods.named_modules():
            if path and fnmatchcase(path, pattern):
                chosen[label] = module
                break
    return chosen


@contextmanager
def instrumented(model: LoadedModel) -> Iterator[UtteranceStages]:
    """Probes on ``model`` while the block runs; the yielded record fills in as it transcribes.

    Time the transcription yourself and set ``wall`` (the probes do not see the whole call).
    """
    found = UtteranceStages(model.interface)
    probes = _Probes()
    try:
        if model.interface == "WhisperASR":
            _whisper_probes(model, probes, found)
        elif model.interface == "EncoderASR":
            modules = ctc_modules(model.mods)
            if not modules:
                raise SystemExit(f"error: {model.source} has none of the wav2vec2/CTC stages")
            for label, module in modules.items():
                probes.module(module, lambda s, label=label: found.add(label, s))
        else:
            raise SystemExit(
                f"error: {model.source} is an {model.interface}; profile_plans.py breaks down "
                "WhisperASR and wav2vec2 EncoderASR models"
            )
        yield found
    finally:
        probes.close()


def breakdown(found: UtteranceStages) -> list[Row]:
    """Disjoint rows (sub-rows name their parent) whose top-level rows add up to ``wall``."""
    if found.interface == "WhisperASR":
        return _whisper_rows(found)
    rows = []
    top = 0.0
    for label, _, part_of in CTC_STAGES:
        if label in found.stages:
            rows.append(Row(label, found.stages[label], part_of))
            top += found.stages[label] if part_of is None else 0.0
    rows.append(Row("rest (normalisation, CTC greedy, tokenizer, glue)", found.wall - top))
    return rows


def _whisper_rows(found: UtteranceStages) -> list[Row]:
    steps = found.steps
    stages = found.stages
    features, encoder = stages.get("features", 0.0), stages.get("encoder", 0.0)
    search, outside = stages.get("search", 0.0), stages.get(OUTSIDE_SEARCH, 0.0)
    rows = [
        Row("features (pad to 30 s, log-mel)", features),
        Row("encoder forward", encoder),
        Row("decoder steps", found.steps_seconds),
        Row("decoder layers", sum(s.layers for s in steps), "decoder steps"),
        Row("logits head", sum(s.forward_decoder - s.layers for s in steps), "decoder steps"),
        Row("step glue", sum(s.seconds - s.forward_decoder for s in steps), "decoder steps"),
        Row("search loop outside steps", search - found.steps_seconds),
    ]
    if outside:
        rows.append(Row(OUTSIDE_SEARCH, outside))
    rows.append(Row("rest (tokenizer, glue)", found.wall - features - encoder - search - outside))
    return rows
