"""Tied output projections: an embedding matrix that also turns decoder states into logits.

SpeechBrain's Whisper computes its logits as ``states @ embed_tokens.weight.T`` inside
``forward_decoder``, outside any ``Linear`` module, so Linear-targeting schemes never reach it.
Yet this product over the whole vocabulary runs at every decoding step and reads the full
embedding matrix each time: after dynamic int8 on every Linear layer of Whisper tiny.en it is
about 40 % of the decoding time.

A plan entry ``dynamic`` or ``bf16`` on the embedding's *own* path (inherited entries leave it
float, as torch's dynamic quantization leaves embeddings) replaces it with a
:class:`TiedHeadEmbedding` that keeps the matrix once, in int8 with one scale per row or in
bfloat16. Lookups dequantize the rows they read; the projection runs as a dynamic int8 ``Linear``
(activations quantized on the fly) or a bfloat16 matmul. The owner's decoder step is bound to
call :meth:`TiedHeadEmbedding.project` (see :data:`OWNERS`).
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from speechquant.core.errors import PlanError

HEAD_SCHEMES = ("dynamic", "bf16")


class TiedHeadEmbedding(nn.Module):
    """An embedding whose matrix is also the output projection, stored in int8 or bfloat16.

    Parameters
    ----------
    embedding
        The float embedding (not changed). On the meta device (an export's skeleton) only the
        structure is built: the state loaded afterwards fills the matrix.
    scheme
        ``dynamic``: int8 rows with per-row scales, projection by a dynamic int8 Linear over the
        same quantized matrix (saved once: the rows are rebuilt from it on load). ``bf16``: bfloat16 rows, projection by a bfloat16 matmul.
    """

    rows: torch.Tensor
    row_scales: torch.Tensor

    def __init__(self, embedding: nn.Module, scheme: str) -> None:
        super().__init__()
        if not isinstance(embedding, nn.Embedding):
            raise PlanError(f"a tied output projection must be an Embedding, not {embedding}")
        if scheme not in HEAD_SCHEMES:
            raise PlanError(
                f"a tied output projection takes {' or '.join(HEAD_SCHEMES)}, not '{scheme}'"
            )
        self.scheme = scheme
        self.num_embeddings, self.embedding_dim = embedding.weight.shape
        self.padding_idx = embedding.padding_idx
        weight = embedding.weight.detach()
        if scheme == "dynamic":
            self.projection = (
                _empty_dynamic_linear(*weight.shape)
                if weight.is_meta
                else _dynamic_linear(weight.float())
            )
            self.register_buffer("rows", torch.empty(0, dtype=torch.int8), persistent=False)
            self.register_buffer("row_scales", torch.empty(0), persistent=False)
            if not weight.is_meta:
                self._rows_from_projection()
            self.register_load_state_dict_post_hook(TiedHeadEmbedding._after_load)
        else:
            self.register_buffer("rows", weight.to(torch.bfloat16))

    def _rows_from_projection(self) -> None:
        """Lookup rows (int8 and per-row scales) from the packed projection, stored only once."""
        projection: Any = self.projection
        qweight = projection.weight()
        self.rows = qweight.int_repr()
        self.row_scales = qweight.q_per_channel_scales().float()

    @staticmethod
    def _after_load(module: nn.Module, incompatible: Any) -> None:
        if isinstance(module, TiedHeadEmbedding):
            module._rows_from_projection()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.rows[ids].float()
        if self.scheme == "dynamic":
            return rows * self.row_scales[ids].unsqueeze(-1)
        return rows

    def project(self, states: torch.Tensor) -> torch.Tensor:
        """Logits ``states @ weight.T`` in float32, computed in int8 or bfloat16."""
        if self.scheme == "dynamic":
            return self.projection(states.float())
        return nn.functional.linear(states.to(torch.bfloat16), self.rows).float()

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, scheme={self.scheme}"


def _empty_dynamic_linear(out_features: int, in_features: int) -> nn.Module:
    """A dynamic int8 Linear with a placeholder weight (an export's state replaces it)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return DynamicLinear(in_features, out_features, bias_=False, dtype=torch.qint8)


def _dynamic_linear(weight: torch.Tensor) -> nn.Module:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    linear.weight = nn.Parameter(weight, requires_grad=False)
    linear.qconfig = per_channel_dynamic_qconfig  # type: ignore[assignment]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return DynamicLinear.from_float(linear)


def _whisper_forward_decoder(
    self: Any,
    encoder_states: torch.Tensor,
    decoder_input_ids: torch.Tensor,
    use_cache: bool = True,
    past_key_values: Any = None,
) -> tuple[torch.Tensor, torch.Tensor | None, Any]:
    """SpeechBrain ``Whisper.forward_decoder`` with the logits from the tied head's ``project``."""
    if past_key_values is not None:
        decoder_input_ids = decoder_input_ids[:, -1].unsqueeze(-1)
    output_states = self.model.decoder(
        encoder_hidden_states=encoder_states,
        input_ids=decoder_input_ids,
        past_key_values=past_key_values,
        output_attentions=self.output_attentions,
        use_cache=use_cache,
    )
    if self.output_attentions:
        attn = output_states.attentions[-1]
        attn = attn.view(attn.shape[0] * attn.shape[1], *attn.shape[2:])
    else:
        attn = None
    logits = self.model.decoder.embed_tokens.project(output_states.last_hidden_state).float()
    return logits, attn, output_states.past_key_values


@dataclass(frozen=True)
class HeadOwner:
    """A SpeechBrain class (or subclass) that projects with its embedding, and how to rebind it."""

    class_name: str
    method: str
    embedding: str
    """Dotted path of the tied embedding inside the owner."""
    replacement: Callable[..., Any]

    def matches(self, module: nn.Module) -> bool:
        return (
            any(
                cls.__name__ == self.class_name and cls.__module__.startswith("speechbrain.")
                for cls in type(module).__mro__
            )
            and callable(getattr(module, self.method, None))
            and isinstance(_get(module, self.embedding), (nn.Embedding, TiedHeadEmbedding))
        )


OWNERS: tuple[HeadOwner, ...] = (
    HeadOwner("Whisper", "forward_decoder", "model.decoder.embed_tokens", _whisper_forward_decoder),
)


def _get(module: nn.Module, dotted: str) -> Any:
    for name in dotted.split("."):
        module = getattr(module, name, None)  # type: ignore[assignment]
        if module is None:
            return None
    return module


def tied_head_paths(mods: nn.Module) -> dict[str, str]:
    """Path of each tied output embedding in ``mods`` -> path of its owner (first paths seen)."""
    found: dict[str, str] = {}
    for path, module in mods.named_modules():
        for owner in OWNERS:
            if owner.matches(module):
                found[f"{path}.{owner.embedding}" if path else owner.embedding] = path
    return found


def bind_heads(mods: nn.Module) -> int:
    """Point each owner whose embedding is a :class:`TiedHeadEmbedding` at it; returns how many.

    Only the given (already private) owner objects are changed.
    """
    bound = 0
    for _, module in mods.named_modules():
        for owner in OWNERS:
            if owner.matches(module) and isinstance(
                _get(module, owner.embedding), TiedHeadEmbedding
            ):
                setattr(module, owner.method, types.MethodType(owner.replacement, module))
                bound += 1
    return bound
