"""The later Whisper decoder steps (one token in, the key/value cache as plain tensors) as one module.

transformers' ``WhisperDecoder`` runs a step through cache objects, mask construction, keyword
plumbing and per-layer Python; :class:`TokenStep` does the same arithmetic on one new token with
the self-attention keys/values and the cross-attention keys/values passed in as lists of tensors,
so it can run eagerly, be scripted and frozen by TorchScript (which calls
``quantized::linear_dynamic`` itself), or be given to ``torch.compile``.

The arithmetic follows transformers 5's Whisper with SDPA attention operation for operation: the
query scaled after ``q_proj``, contiguous head layouts, the new key/value appended with
``torch.cat`` on the sequence axis, ``scaled_dot_product_attention`` without a mask at scale 1,
exact GELU, the final layer norm, then the int8 tied head (``DynamicTiedHead``: rows times
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
from torch.nn import functional as F  # noqa: N812


class TokenLayer(nn.Module):
    """One ``WhisperDecoderLayer`` for a single new token, its caches passed in."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        attn, cross = layer.self_attn, layer.encoder_attn
        self.heads = int(attn.num_heads)
        self.head_dim = int(attn.head_dim)
        self.scaling = float(attn.scaling)
        self.self_norm = layer.self_attn_layer_norm
        self.q_proj, self.k_proj, self.v_proj = attn.q_proj, attn.k_proj, attn.v_proj
        self.out_proj = attn.out_proj
        self.cross_norm = layer.encoder_attn_layer_norm
        self.cross_q_proj, self.cross_out_proj = cross.q_proj, cross.out_proj
        self.final_norm = layer.final_layer_norm
        self.fc1, self.fc2 = layer.fc1, layer.fc2

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), -1, self.heads, self.head_dim).transpose(1, 2).contiguous()

    def _merge(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        x = x.reshape(x.size(0), -1, 1, self.head_dim).transpose(1, 2).contiguous()
        return x.reshape(batch, 1, -1).contiguous()

    def forward(
        self,
        x: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
        cross_k: torch.Tensor,
        cross_v: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = x.size(0)
        h = self.self_norm(x)
        q = self._heads(self.q_proj(h) * self.scaling)
        k = torch.cat([past_k, self._heads(self.k_proj(h))], dim=-2)
        v = torch.cat([past_v, self._heads(self.v_proj(h))], dim=-2)
        a = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        x = x + self.out_proj(self._merge(a, batch))
        h = self.cross_norm(x)
        q = self._heads(self.cross_q_proj(h) * self.scaling)
        a = F.scaled_dot_product_attention(q, cross_k, cross_v, scale=1.0)
        x = x + self.cross_out_proj(self._merge(a, batch))
        h = self.fc2(F.gelu(self.fc1(self.final_norm(x))))
        return x + h, k, v


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
        self.layers = nn.ModuleList(TokenLayer(layer) for layer in decoder.layers)
        self.norm = decoder.layer_norm

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
        new_k: list[torch.Tensor] = []
        new_v: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, self_k[i], self_v[i], cross_k[i], cross_v[i])
            new_k.append(k)
            new_v.append(v)
        logits = self.projection(self.norm(x).float()).float()
        return logits, new_k, new_v


Step = Callable[..., tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]]


def scripted(step: TokenStep, optimize: bool) -> Step:
    """``step`` scripted and frozen by TorchScript (then ``optimize_for_inference`` if asked)."""
    frozen = torch.jit.freeze(torch.jit.script(step.eval()))
    return torch.jit.optimize_for_inference(frozen) if optimize else frozen


def compiled(step: TokenStep) -> Step:
    """``step`` under ``torch.compile`` (inductor, dynamic shapes: the cache grows each step)."""
    return torch.compile(step, dynamic=True)  # type: ignore[return-value]


def unpack_cache(cache: Any) -> tuple[list[torch.Tensor], ...]:
    """Self- and cross-attention keys and values of a transformers ``EncoderDecoderCache``."""
    own, cross = cache.self_attention_cache.layers, cache.cross_attention_cache.layers
    return (
        [layer.keys for layer in own],
        [layer.values for layer in own],
        [layer.keys for layer in cross],
        [layer.values for layer in cross],
    )


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
