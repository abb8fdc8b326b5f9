"""Variants of a Whisper plan that might transcribe faster, each timed against the plan itself.

Every variant is built by its own ``apply_plan`` call, so its searcher is a private copy and
the changes below (instance attributes on that copy) never reach the plan it is timed against:

- :func:`decoder_threads`: the greedy search (every decoder step) at another thread count, the
  encoder at the process's;
- :class:`InferenceModeModel`: the whole transcription under ``torch.inference_mode`` instead
  of ``torch.no_grad`` (no version counters or autograd bookkeeping on new tensors);
- :func:`lean_suppression`: the searcher's step with the suppressed-token indices built once
  (SpeechBrain converts a Python list of about 90 ids to an index at every step);
- :func:`static_front_end`: the plan plus static int8 for the encoder's two convolutions;
- :func:`float_decoder_layers`: the plan with the decoder layers left float32 (at one token per
  step their int8 matmuls are matrix-vector products that also quantize the input every call);
- :func:`captured_step`: the later decoder steps as one module with explicit key/value tensors
  (``captured_step.py``), run eagerly, scripted and frozen by TorchScript (optionally also
  ``optimize_for_inference``), or under ``torch.compile``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from captured_step import TokenStep, captured_searcher, compiled, scripted

from speechquant.core.model.loaded import LoadedModel, Transcript
from speechquant.core.quantization.plan import Plan

FRONT_END = ("whisper.model.encoder.conv1", "whisper.model.encoder.conv2")
DECODER_LAYERS = "whisper.model.decoder.layers"


def renamed(plan: Plan, name: str, extra: dict[str, str] | None = None) -> Plan:
    """``plan`` under another name, with ``extra`` entries added."""
    return Plan(entries={**plan.entries, **(extra or {})}, settings=plan.settings, name=name)


def static_front_end(plan: Plan) -> Plan:
    """``plan`` with static int8 on the Whisper encoder's conv1 and conv2 (needs calibration)."""
    return renamed(plan, f"{plan.name} + static conv front end", dict.fromkeys(FRONT_END, "static"))


def float_decoder_layers(plan: Plan) -> Plan:
    """``plan`` with the Whisper decoder layers kept float32 (embedding and head as planned)."""
    return renamed(plan, f"{plan.name}, decoder layers float32", {DECODER_LAYERS: "none"})


def _private_searcher(variant: LoadedModel, base: LoadedModel) -> Any:
    searcher = variant.mods["decoder"]
    if searcher is base.mods["decoder"]:
        raise SystemExit("error: the variant shares its searcher with the model; build it anew")
    return searcher


def decoder_threads(variant: LoadedModel, base: LoadedModel, threads: int) -> LoadedModel:
    """Run ``variant``'s greedy search at ``threads`` threads (the thread count is restored)."""
    searcher = _private_searcher(variant, base)
    search = searcher.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return search(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    searcher.forward = forward
    return variant


class InferenceModeModel(LoadedModel):
    """A model whose transcription runs under ``torch.inference_mode``."""

    @classmethod
    def of(cls, model: LoadedModel) -> InferenceModeModel:
        return cls(**{f.name: getattr(model, f.name) for f in dataclasses.fields(model)})

    def transcribe_windows(self, wav: torch.Tensor) -> Transcript:
        with torch.inference_mode():
            return super().transcribe_windows(wav)


def lean_suppression(variant: LoadedModel, base: LoadedModel) -> LoadedModel:
    """SpeechBrain's Whisper greedy step with the suppression indices made once, not per step.

    The same logits come out: the blank and suppressed tokens are set to ``-inf`` in place on
    the last position, as SpeechBrain's indexed assignment does.
    """
    searcher = _private_searcher(variant, base)
    whisper = searcher.model
    suppressed = torch.tensor(searcher.get_tokens_to_suppress, dtype=torch.long)
    blank_ids = whisper.tokenizer.encode(" ", add_special_tokens=False) + [searcher.eos_index]
    blank = torch.tensor(blank_ids, dtype=torch.long)
    at_bos = searcher.initial_tokens.index(whisper.bos)

    def forward_step(
        inp_tokens: torch.Tensor,
        memory: torch.Tensor,
        enc_states: torch.Tensor,
        enc_lens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        tokens = torch.cat([memory, inp_tokens.unsqueeze(1)], dim=-1)
        logits, attn, kv = whisper.forward_decoder(
            enc_states, tokens, past_key_values=searcher.kv_cache
        )
        first = tokens.shape[1] == searcher.sample_begin
        if first:
            probs = logits[:, at_bos].float().softmax(dim=-1)
            searcher.no_speech_probs = probs[:, whisper.no_speech].tolist()
        logits = logits[:, -1]
        if searcher.use_kv_cache:
            searcher.kv_cache = kv
        if searcher.suppress_blank and first:
            logits.index_fill_(1, blank, -torch.inf)
        if searcher.suppress_tokens:
            logits.index_fill_(1, suppressed, -torch.inf)
        return logits, tokens, attn

    searcher.forward_step = forward_step
    return variant


#: ``--variants`` name of each way of running the captured step -> its label in the table.
CAPTURES = {
    "step-eager": "eager",
    "step-script": "TorchScript scripted + frozen",
    "step-ofi": "TorchScript scripted + frozen + optimize_for_inference",
    "step-compile": "torch.compile (inductor, dynamic shapes)",
}


def captured_step(
    variant: LoadedModel, base: LoadedModel, how: str, first: torch.Tensor
) -> LoadedModel:
    """``variant`` with its later decoder steps run by :class:`TokenStep` as ``how`` says.

    Prints the capture time and the first transcription of ``first`` (where ``torch.compile``
    compiles and TorchScript's profiling executor specialises), both part of the warm-up.
    """
    searcher = _private_searcher(variant, base)
    step = TokenStep(searcher.model.model.decoder).eval()
    start = time.perf_counter()
    if how == "step-eager":
        run: Any = step
    elif how == "step-compile":
        run = compiled(step)
    else:
        run = scripted(step, optimize=how == "step-ofi")
    captured = time.perf_counter() - start
    clock = captured_searcher(searcher, run)
    start = time.perf_counter()
    variant.transcribe(first)
    warm = time.perf_counter() - start
    print(
        f"{CAPTURES[how]}: capture {captured:.2f} s, first transcription {warm:.2f} s "
        f"({clock['later_steps']:.0f} later steps)",
        flush=True,
    )
    return variant
