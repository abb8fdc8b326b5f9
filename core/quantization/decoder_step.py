"""The later steps of a Whisper greedy search run as one TorchScript module (``decoder_step``).

SpeechBrain's Whisper greedy searcher runs each step through transformers' ``WhisperDecoder``:
cache objects, mask construction, keyword plumbing and per-layer Python around a handful of
matrix-vector products. With ``decoder_step = "scripted"`` every step after the first (which
feeds the prompt and computes the cross-attention keys and values of the encoder output, and
stays SpeechBrain's) runs :class:`TokenLayers` instead: the same arithmetic on one new token with
the keys and values passed as plain tensors, scripted and frozen by TorchScript, which calls the
layers' own (float, dynamic int8 or static int8) kernels directly. The embedding lookup and the
output projection (the float matrix or the plan's tied head) stay the decoder's own modules.

The arithmetic follows transformers' Whisper decoder layer with SDPA attention operation for
operation: query scaled after ``q_proj``, contiguous head layouts, the new key/value appended on
the sequence axis, ``scaled_dot_product_attention`` without a mask at scale 1, exact GELU. Each
capture is checked against the searcher's own step on a probe input before it is used
(:data:`TOLERANCE`), so a decoder it does not reproduce is refused rather than decoded wrongly.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from speechquant.core.errors import PlanError
from speechquant.core.quantization.heads import TiedHeadEmbedding

#: The captured step's logits may differ from the searcher's by this much (max absolute
#: difference over the largest logit magnitude, at least 1) on the probe input.
TOLERANCE = 1e-3
FIX = "set decoder_step to native"
SEARCHER = "S2SWhisperGreedySearcher"
LAYER = "WhisperDecoderLayer"
ATTENTION_PARTS = ("q_proj", "k_proj", "v_proj", "out_proj")
CROSS_PARTS = ("q_proj", "out_proj")


class TokenLayer(nn.Module):
    """One ``WhisperDecoderLayer`` for a single new token, its caches passed in."""

    def __init__(self, layer: Any) -> None:
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


class TokenLayers(nn.Module):
    """The decoder layers and final layer norm for one token: states ``(B, 1, D)`` in and out.

    Also returns the self-attention keys and values with the new token appended; the
    cross-attention ones do not change.
    """

    def __init__(self, decoder: Any) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TokenLayer(layer) for layer in decoder.layers)
        self.norm = decoder.layer_norm

    def forward(
        self,
        x: torch.Tensor,
        self_k: list[torch.Tensor],
        self_v: list[torch.Tensor],
        cross_k: list[torch.Tensor],
        cross_v: list[torch.Tensor],
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        new_k: list[torch.Tensor] = []
        new_v: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, self_k[i], self_v[i], cross_k[i], cross_v[i])
            new_k.append(k)
            new_v.append(v)
        return self.norm(x), new_k, new_v


def _named_classes(module: Any) -> set[str]:
    return {cls.__name__ for cls in type(module).__mro__}


def is_whisper_searcher(module: Any) -> bool:
    """Whether ``module`` is SpeechBrain's Whisper greedy searcher (or a subclass)."""
    return SEARCHER in _named_classes(module) and hasattr(module, "model")


def whisper_searchers(mods: nn.ModuleDict) -> list[str]:
    """Names of the top-level modules of ``mods`` that are Whisper greedy searchers."""
    return [name for name, module in mods.items() if is_whisper_searcher(module)]


def refusal(mods: nn.ModuleDict, where: str) -> str | None:
    """The one-line error ``decoder_step = "scripted"`` gets on ``mods``, or None where it fits."""
    names = whisper_searchers(mods)
    reason: str | None
    if not names:
        kinds = ", ".join(sorted({type(m).__name__ for m in mods.values()}))
        reason = f"it has no Whisper greedy searcher (its modules are {kinds})"
    else:
        reason = next((r for r in map(why_not_scripted, (mods[n] for n in names)) if r), None)
    if reason is None:
        return None
    return f"decoder_step 'scripted' does not apply to {where}: {reason}; {FIX}"


def check_decoder_step(decoder_step: str, mods: nn.ModuleDict, where: str) -> None:
    """Raise :class:`PlanError` (see :func:`refusal`) when ``decoder_step`` cannot apply here."""
    problem = refusal(mods, where) if decoder_step == "scripted" else None
    if problem is not None:
        raise PlanError(problem)


def why_not_scripted(searcher: Any) -> str | None:
    """Why the later steps of ``searcher`` cannot be scripted, or None when they can."""
    if not is_whisper_searcher(searcher):
        return f"its decoder is a {type(searcher).__name__}, not a Whisper greedy searcher"
    if not searcher.use_kv_cache:
        return "its searcher does not use the key/value cache"
    whisper = searcher.model
    if getattr(whisper, "output_attentions", False):
        return "its searcher asks the decoder for attention weights"
    decoder = getattr(getattr(whisper, "model", None), "decoder", None)
    layers = getattr(decoder, "layers", None)
    if decoder is None or layers is None or not len(layers):
        return "its Whisper module has no decoder layers"
    if getattr(decoder.config, "activation_function", "gelu") != "gelu":
        return f"its decoder uses {decoder.config.activation_function}, not GELU"
    for i, layer in enumerate(layers):
        if LAYER not in _named_classes(layer):
            return f"decoder layer {i} is a {type(layer).__name__}, not a {LAYER}"
        attn, cross = getattr(layer, "self_attn", None), getattr(layer, "encoder_attn", None)
        parts = [
            *((layer, name) for name in ("fc1", "fc2")),
            *((attn, name) for name in ATTENTION_PARTS),
            *((cross, name) for name in CROSS_PARTS),
        ]
        if any(not hasattr(owner, name) for owner, name in parts):
            return f"decoder layer {i} lacks the attention or feed-forward parts of a {LAYER}"
    return None


def unpack_cache(cache: Any) -> tuple[list[torch.Tensor], ...]:
    """Self- and cross-attention keys and values of a transformers ``EncoderDecoderCache``."""
    own, cross = cache.self_attention_cache.layers, cache.cross_attention_cache.layers
    return (
        [layer.keys for layer in own],
        [layer.values for layer in own],
        [layer.keys for layer in cross],
        [layer.values for layer in cross],
    )


def _logits(decoder: Any, states: torch.Tensor) -> torch.Tensor:
    embed = decoder.embed_tokens
    if isinstance(embed, TiedHeadEmbedding):
        return embed.project(states).float()
    return (states @ embed.weight.to(states.dtype).t()).float()


def _later_step(
    self: Any,
    inp_tokens: torch.Tensor,
    memory: torch.Tensor,
    enc_states: torch.Tensor,
    enc_lens: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """The searcher's ``forward_step``: its own for the first step, the scripted one after."""
    cache = self.kv_cache
    if cache is None:
        logits, tokens, attn = type(self).forward_step(
            self, inp_tokens, memory, enc_states, enc_lens, attention_mask
        )
        if self.kv_cache is not None:
            self.kv_cache = unpack_cache(self.kv_cache)
        return logits, tokens, attn
    tokens = torch.cat([memory, inp_tokens.unsqueeze(1)], dim=-1)
    decoder = self.model.model.decoder
    self_k, self_v, cross_k, cross_v = cache
    x = decoder.embed_tokens(tokens[:, -1:]) + decoder.embed_positions.weight[self_k[0].shape[-2]]
    states, new_k, new_v = self.__dict__["scripted_layers"](x, self_k, self_v, cross_k, cross_v)
    self.kv_cache = (new_k, new_v, cross_k, cross_v)
    logits = _logits(decoder, states)[:, -1]
    if self.suppress_tokens:
        logits[:, list(self.get_tokens_to_suppress)] = -torch.inf
    return logits, tokens, None


def _probe(searcher: Any, layers: Any) -> float:
    """Largest relative logit difference between the searcher's second step and the captured one."""
    whisper = searcher.model
    decoder = whisper.model.decoder
    width = decoder.embed_positions.weight.shape[1]
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(1, 12, width, generator=generator)
    prompt = torch.tensor([list(searcher.initial_tokens)])
    token = torch.tensor([[int(searcher.initial_tokens[-1])]])
    _, _, cache = whisper.forward_decoder(states, prompt, past_key_values=None)
    own, _, _ = whisper.forward_decoder(
        states, torch.cat([prompt, token], 1), past_key_values=cache
    )
    _, _, cache = whisper.forward_decoder(states, prompt, past_key_values=None)
    self_k, self_v, cross_k, cross_v = unpack_cache(cache)
    x = decoder.embed_tokens(token) + decoder.embed_positions.weight[self_k[0].shape[-2]]
    captured, _, _ = layers(x, self_k, self_v, cross_k, cross_v)
    mine = _logits(decoder, captured)[:, -1]
    theirs = own[:, -1].float()
    return float((mine - theirs).abs().max()) / max(1.0, float(theirs.abs().max()))


def script_decoder_step(searcher: Any, where: str) -> None:
    """Make the later steps of ``searcher`` (private to one variant) run scripted.

    Raises
    ------
    PlanError
        One line naming ``where`` when the searcher cannot be scripted, TorchScript refuses its
        layers, or the scripted step does not reproduce the searcher's own on the probe input.
    """
    reason = why_not_scripted(searcher)
    if reason is not None:
        raise PlanError(f"decoder_step 'scripted' does not apply to {where}: {reason}; {FIX}")
    decoder = searcher.model.model.decoder
    try:
        with torch.no_grad():
            layers = torch.jit.freeze(torch.jit.script(TokenLayers(decoder).eval()))
    except Exception as exc:  # TorchScript reports any unscriptable layer its own way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PlanError(
            f"decoder_step 'scripted': TorchScript cannot script the decoder of {where} ({first}); "
            f"{FIX}"
        ) from None
    with torch.no_grad():
        difference = _probe(searcher, layers)
    if not difference <= TOLERANCE:
        raise PlanError(
            f"decoder_step 'scripted' does not reproduce the decoder of {where} (relative logit "
            f"difference {difference:.2g} on the probe, over {TOLERANCE:g}); {FIX}"
        )
    searcher.__dict__["scripted_layers"] = layers
    searcher.forward_step = types.MethodType(_later_step, searcher)
    searcher.kv_cache = None
