"""Tied output projections: an embedding matrix that also turns decoder states into logits.

SpeechBrain's Whisper computes its logits as ``states @ embed_tokens.weight.T`` inside
``forward_decoder``, outside any ``Linear`` module, so Linear-targeting schemes never reach it.
Yet this product over the whole vocabulary runs at every decoding step and reads the full
embedding matrix each time: after dynamic int8 on every Linear layer of Whisper tiny.en it is
about 40 % of the decoding time.

A plan entry on the embedding's *own* path naming a scheme that supports tied heads
(``Scheme.supports_tied_head``: ``dynamic`` and ``bf16``; inherited entries leave it float, as
torch's dynamic quantization leaves embeddings) replaces it with the scheme's
:class:`TiedHeadEmbedding`, which keeps the matrix once (int8 with one scale per row, or
bfloat16): lookups dequantize the rows they read, the projection runs as a dynamic int8
``Linear`` or a bfloat16 matmul. The owner's decoder step is bound to call
:meth:`TiedHeadEmbedding.project` (see :data:`OWNERS`).
"""

from __future__ import annotations

import types
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from speechquant.core.errors import PlanError


class TiedHeadEmbedding(nn.Module, ABC):
    """An embedding whose matrix is also the output projection, stored by a scheme.

    Schemes that take a tied head (``Scheme.supports_tied_head``) subclass this in their own
    module and build it in ``Scheme.tied_head``; :func:`bind_heads` points the owner's decoder
    step at :meth:`project`.

    Parameters
    ----------
    embedding
        The float embedding (not changed). On the meta device (an export's skeleton) only the
        structure is built: the state loaded afterwards fills the matrix.
    scheme
        The name of the scheme that built this head.
    """

    def __init__(self, embedding: nn.Module, scheme: str) -> None:
        super().__init__()
        if not isinstance(embedding, nn.Embedding):
            raise PlanError(f"a tied output projection must be an Embedding, not {embedding}")
        self.scheme = scheme
        self.num_embeddings, self.embedding_dim = embedding.weight.shape
        self.padding_idx = embedding.padding_idx

    @abstractmethod
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Float32 rows of ``ids`` (the embedding lookup)."""

    @abstractmethod
    def project(self, states: torch.Tensor) -> torch.Tensor:
        """Logits ``states @ weight.T`` in float32."""

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, scheme={self.scheme}"


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
