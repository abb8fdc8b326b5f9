"""The later Whisper decoder steps (one token in, the key/value cache as plain tensors) as one module.

transformers' ``WhisperDecoder`` runs a step through cache objects, mask construction, keyword
plumbing and per-layer Python; :class:`TokenStep` does the same arithmetic on one new token with
the self-attention keys/values and the cross-attention keys/values passed in as lists of tensors,
so it can run eagerly, be scripted and frozen by TorchScript (which calls
``quantized::linear_dynamic`` itself), or be given to ``torch.compile``.

The layers are the product's :class:`TokenLayers` (``decoder_step = "scripted"``); around them
this module adds the lookup and the int8 tied head (``DynamicTiedHead``: rows times
per-row scales for the lookup, its dynamic int8 Linear for the logits).

:func:`captured_searcher` rebinds a private greedy searcher's ``forward_step``: the first step
(the prompt, and the cross-attention keys/values of the encoder output) runs SpeechBrain's own
path; its cache is then unpacked into tensors and every later step runs the captured module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from speechquant.core.quantization.decoder_step import TokenLayers, unpack_cache


class TokenStep(nn.Module):
    """A later Whisper decoder step: token ids ``(B, 1)`` at ``position`` to float32 logits.

    Returns the logits ``(B, 1, vocabulary)`` and the self-attention keys and values with the
    new token appended; the cross-attention ones do not change.
    """

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        head = decoder.embed_tokens
        if type(head).__name__ != "DynamicTiedHead":
            raise SystemExit(
                f"error: the captured step needs the int8 tied head, not {type(head).__name__}"
            )
        if getattr(decoder.config, "activation_function", "gelu") != "gelu":
            raise SystemExit("error: the captured step implements the GELU decoder layers only")
        self.register_buffer("rows", head.rows)
        self.register_buffer("row_scales", head.row_scales)
        self.register_buffer("positions", decoder.embed_positions.weight.detach())
        self.projection = head.projection
        self.body = TokenLayers(decoder)

    def forward(
        self,
        ids: torch.Tensor,
        position: torch.Tensor,
        self_k: list[torch.Tensor],
        self_v: list[torch.Tensor],
        cross_k: list[torch.Tensor],
        cross_v: list[torch.Tensor],
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        x = self.rows[ids].float() * self.row_scales[ids].unsqueeze(-1)
        x = x + self.positions[position]
        states, new_k, new_v = self.body(x, self_k, self_v, cross_k, cross_v)
        logits = self.projection(states.float()).float()
        return logits, new_k, new_v


Step = Callable[..., tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]]


def scripted(step: TokenStep, optimize: bool) -> Step:
    """``step`` scripted and frozen by TorchScript (then ``optimize_for_inference`` if asked)."""
    frozen = torch.jit.freeze(torch.jit.script(step.eval()))
    return torch.jit.optimize_for_inference(frozen) if optimize else frozen


def compiled(step: TokenStep) -> Step:
    """``step`` under ``torch.compile`` (inductor, dynamic shapes: the cache grows each step)."""
    return torch.compile(step, dynamic=True)  # type: ignore[return-value]


def captured_searcher(searcher: Any, step: Step) -> dict[str, float]:
    """Point ``searcher.forward_step`` at ``step`` after the first step; returns its clock.

    The clock counts the later steps and their seconds (``later_steps``, ``later_seconds``).
    The searcher's suppression and no-speech bookkeeping are SpeechBrain's, done the same way.
    """
    first_step = searcher.forward_step
    suppressed = list(searcher.get_tokens_to_suppress)
    clock = {"later_steps": 0.0, "later_seconds": 0.0}

    def forward_step(
        inp_tokens: torch.Tensor,
        memory: torch.Tensor,
        enc_states: torch.Tensor,
        enc_lens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        cache = searcher.kv_cache
        if cache is None or not searcher.use_kv_cache:
            logits, tokens, attn = first_step(
                inp_tokens, memory, enc_states, enc_lens, attention_mask
            )
            if searcher.kv_cache is not None:
                searcher.kv_cache = unpack_cache(searcher.kv_cache)
            return logits, tokens, attn
        start = time.perf_counter()
        tokens = torch.cat([memory, inp_tokens.unsqueeze(1)], dim=-1)
        self_k, self_v, cross_k, cross_v = cache
        position = torch.full((tokens.shape[0], 1), self_k[0].shape[-2], dtype=torch.long)
        logits, new_k, new_v = step(tokens[:, -1:], position, self_k, self_v, cross_k, cross_v)
        searcher.kv_cache = (new_k, new_v, cross_k, cross_v)
        logits = logits[:, -1]
        if searcher.suppress_tokens:
            logits[:, suppressed] = -torch.inf
        clock["later_steps"] += 1
        clock["later_seconds"] += time.perf_counter() - start
        return logits, tokens, None

    searcher.forward_step = forward_step
    return clock
