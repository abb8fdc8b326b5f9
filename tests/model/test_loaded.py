"""LoadedModel's transcription keeps nothing of a clip once it is transcribed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from speechquant.core.model.loaded import LoadedModel


class _Searcher(nn.Module):
    """Holds its key/value cache after decoding, as SpeechBrain's Whisper searchers do."""

    def __init__(self) -> None:
        super().__init__()
        self.kv_cache: torch.Tensor | None = None


class _ASR:
    def __init__(self, fail: bool = False) -> None:
        self.mods = nn.ModuleDict({"decoder": _Searcher()})
        self.fail = fail

    def transcribe_batch(self, wavs: torch.Tensor, lens: torch.Tensor) -> tuple[list[str], None]:
        self.mods["decoder"].kv_cache = torch.zeros(1500, 384)
        if self.fail:
            raise RuntimeError("decoding failed")
        return ["a clip"], None


def _model(asr: _ASR) -> LoadedModel:
    return LoadedModel(
        asr=asr, source="fake", interface="WhisperASR", folder=Path("."), sample_rate=16000
    )


def test_the_decoders_key_value_cache_is_dropped_after_each_clip():
    model = _model(_ASR())
    assert model.transcribe(torch.zeros(16000)) == "a clip"
    assert model.mods["decoder"].kv_cache is None


def test_the_cache_is_dropped_when_decoding_fails_too():
    model = _model(_ASR(fail=True))
    with pytest.raises(RuntimeError, match="decoding failed"):
        model.transcribe(torch.zeros(16000))
    assert model.mods["decoder"].kv_cache is None
