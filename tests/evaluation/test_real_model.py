"""Real pretrained Whisper tiny.en on real speech: WER in the expected band, int8 within a point."""

from __future__ import annotations

import pytest

from speechquant.core.data.datasets import Dataset, open_dataset
from speechquant.core.evaluation.bench import BenchSettings, benchmark
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree
from speechquant.core.sources import open_model

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


@pytest.fixture(scope="module")
def whisper():
    return open_model("demo:whisper-tiny-en")


@pytest.fixture(scope="module")
def ljspeech(speech_dir) -> Dataset:
    full = open_dataset(speech_dir / "manifest.csv")
    kept = [u for u in full.utterances if u.id.startswith("LJ")]
    assert len(kept) == 32
    return Dataset(full.source, full.form, kept, [])


def test_whisper_float_and_dynamic_int8_on_ljspeech(whisper, ljspeech):
    settings = BenchSettings(warmup=1, repeats=1, encoder_rtf=False)
    float_result = benchmark(whisper, ljspeech, settings).to_json()
    # Whisper's English normalizer on both sides; an independent implementation gets 7.2-7.6 %.
    assert 6.0 <= float_result["wer"] <= 8.5, float_result["wer"]
    plan = make_preset("all-dynamic", build_tree(whisper.mods))
    quantized = apply_plan(whisper, plan)
    int8_result = benchmark(quantized, ljspeech, settings).to_json()
    assert abs(int8_result["wer"] - float_result["wer"]) <= 1.0, (
        float_result["wer"],
        int8_result["wer"],
    )
    print(
        f"float WER {float_result['wer']:.2f}% RTF {float_result['rtf']:.3f}; "
        f"all-dynamic WER {int8_result['wer']:.2f}% RTF {int8_result['rtf']:.3f}"
    )


def test_whisper_tree_and_presets(whisper):
    tree = build_tree(whisper.mods)
    assert "whisper.model.encoder.layers" in tree and "whisper.model.decoder.layers" in tree
    tutorial = make_preset("tutorial", tree)
    assert tutorial.entries["whisper.model.encoder.conv1"] == "static"
    assert tutorial.entries["whisper.model.decoder.layers"] == "dynamic"
    bf16 = make_preset("bf16", tree)
    assert bf16.entries == {"whisper.model.encoder": "bf16", "whisper.model.decoder.layers": "bf16"}


def test_whisper_bf16_and_tutorial_still_transcribe(whisper, ljspeech):
    from speechquant.core.data.audio import load_audio

    calib = [load_audio(u.audio_path, 16000) for u in ljspeech.utterances[-3:]]
    wav = load_audio(ljspeech.utterances[1].audio_path, 16000)
    expected = whisper.transcribe(wav).lower()
    tree = build_tree(whisper.mods)
    for name in ("bf16", "tutorial"):
        variant = apply_plan(whisper, make_preset(name, tree), calib)
        text = variant.transcribe(wav).lower()
        assert "comparatively modern" in text, (name, text, expected)
