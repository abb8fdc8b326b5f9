"""Toy models for fast tests: the real module structure at a tiny size, built in milliseconds.

:func:`toy_whisper` is a SpeechBrain ``Whisper`` over a randomly initialised Hugging Face
``WhisperModel`` a few thousand parameters large. Its decoder's ``embed_tokens`` is also the
output projection (SpeechBrain's ``forward_decoder`` multiplies by its weight), so the tied-head
logic runs on it exactly as on Whisper tiny.en.
"""

from __future__ import annotations

from pathlib import Path

import torch
from speechbrain.integrations.huggingface.whisper import Whisper
from torch import nn
from transformers import WhisperConfig, WhisperModel

from speechquant.core.model.loaded import LoadedModel

TOY_HEAD = "whisper.model.decoder.embed_tokens"
VOCAB = 96
WIDTH = 16


class ToyWhisper(Whisper):
    """SpeechBrain's Whisper wrapper over a tiny random ``WhisperModel`` (no download)."""

    def __init__(self, seed: int = 0) -> None:
        nn.Module.__init__(self)
        torch.manual_seed(seed)
        config = WhisperConfig(
            vocab_size=VOCAB,
            d_model=WIDTH,
            encoder_layers=1,
            decoder_layers=2,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            num_mel_bins=8,
            max_source_positions=16,
            max_target_positions=32,
            pad_token_id=0,
            decoder_start_token_id=1,
            bos_token_id=2,
            eos_token_id=3,
        )
        self.model = WhisperModel(config).eval()
        self.output_attentions = False


class _ToyASR(nn.Module):
    def __init__(self, mods: nn.ModuleDict) -> None:
        super().__init__()
        self.mods = mods


def toy_whisper_mods(seed: int = 0) -> nn.ModuleDict:
    """``mods`` as SpeechBrain's WhisperASR holds them (``whisper``) around a :class:`ToyWhisper`."""
    return nn.ModuleDict({"whisper": ToyWhisper(seed)})


def toy_whisper(seed: int = 0) -> LoadedModel:
    """A :class:`LoadedModel` around :func:`toy_whisper_mods` (for ``apply_plan``; no transcribe)."""
    return LoadedModel(
        asr=_ToyASR(toy_whisper_mods(seed)),
        source="toy:whisper",
        interface="WhisperASR",
        folder=Path("."),
        sample_rate=16000,
    )


def toy_decoder_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder states (1, 16, WIDTH) and decoder token ids (1, 4) for ``forward_decoder``."""
    generator = torch.Generator().manual_seed(seed)
    states = torch.randn(1, 16, WIDTH, generator=generator)
    ids = torch.randint(2, VOCAB, (1, 4), generator=generator)
    return states, ids
