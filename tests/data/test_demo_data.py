from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from speechquant.core.data import demo_data
from speechquant.core.data.datasets import iter_loaded, open_dataset
from speechquant.core.errors import Cancelled, DataError
from speechquant.core.progress import CancelToken

needs_festival = pytest.mark.skipif(
    shutil.which("festival") is None, reason="festival is not installed"
)
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)


def read_manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The full demo set, synthesized once into a private cache for this module."""
    if shutil.which("festival") is None and shutil.which("espeak-ng") is None:
        pytest.skip("no speech synthesizer installed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPEECHQUANT_CACHE", str(tmp_path_factory.mktemp("demo-cache")))
        yield demo_data.build_demo_data()


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    return tmp_path


def test_sentences_resource() -> None:
    sentences = demo_data.load_sentences()
    assert len(sentences) == 40
    assert len(set(sentences)) == 40
    for sentence in sentences:
        assert 6 <= len(sentence.split()) <= 15
        assert '"' not in sentence


@needs_festival
def test_build_with_festival(built: Path) -> None:
    rows = read_manifest(built)
    assert [r["ID"] for r in rows] == [f"demo-{i:02d}" for i in range(1, 41)]
    assert {r["voice"] for r in rows} == {"festival:cmu_us_slt_arctic_hts"}
    assert [r["wrd"] for r in rows] == demo_data.load_sentences()
    for row in rows[:5]:
        info = sf.info(str(built / row["wav"]))
        assert info.samplerate == 16000
        assert info.channels == 1
        assert info.duration == pytest.approx(float(row["duration"]), abs=0.002)
        assert info.duration > 1.0
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".demo-data")]


def test_open_dataset_demo_synthetic(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(built.parent))
    dataset = open_dataset("demo:synthetic", limit=3)
    assert dataset.form == "demo:synthetic"
    assert dataset.source == "demo:synthetic"
    assert dataset.ids == ["demo-01", "demo-02", "demo-03"]
    assert dataset.utterances[0].ref == demo_data.load_sentences()[0]
    assert all(w.numel() > 16000 for _, w in iter_loaded(dataset, 16000))


def test_cache_is_reused(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(built.parent))

    def fail() -> list[demo_data.Synthesizer]:
        raise AssertionError("synthesized again")

    monkeypatch.setattr(demo_data, "available_synthesizers", fail)
    start = time.perf_counter()
    assert demo_data.build_demo_data() == built
    assert time.perf_counter() - start < 0.5


@needs_espeak
def test_falls_back_to_espeak_without_festival(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_data, "load_sentences", lambda: ["Hello there.", "Good night."])
    monkeypatch.setattr(demo_data, "_which", lambda p: None if p == "festival" else shutil.which(p))
    folder = demo_data.build_demo_data()
    rows = read_manifest(folder)
    assert [r["voice"] for r in rows] == ["espeak-ng:en-us"] * 2
    assert sf.info(str(folder / "demo-02.wav")).samplerate == 16000


@needs_festival
@needs_espeak
def test_falls_back_when_festival_voice_is_missing(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_data, "load_sentences", lambda: ["One small test."])
    monkeypatch.setattr(demo_data, "FESTIVAL_VOICE", "no_such_voice_hts")
    rows = read_manifest(demo_data.build_demo_data())
    assert rows[0]["voice"] == "espeak-ng:en-us"


def test_no_synthesizer_names_apt_packages(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_data, "_which", lambda p: None)
    with pytest.raises(DataError, match="festival and festvox-us-slt-hts.*espeak-ng"):
        demo_data.build_demo_data()
    assert not (private_cache / "demo-data").exists()
    assert list(private_cache.iterdir()) == []


@needs_espeak
def test_rebuilds_when_sentences_change(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_data, "_which", lambda p: None if p == "festival" else shutil.which(p))
    monkeypatch.setattr(demo_data, "load_sentences", lambda: ["First version."])
    demo_data.build_demo_data()
    monkeypatch.setattr(demo_data, "load_sentences", lambda: ["Second version.", "And more."])
    folder = demo_data.build_demo_data()
    assert [r["wrd"] for r in read_manifest(folder)] == ["Second version.", "And more."]
    assert [p.name for p in private_cache.iterdir()] == ["demo-data"]


def test_cancel_leaves_nothing_behind(private_cache: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        demo_data.build_demo_data(cancel=token)
    assert list(private_cache.iterdir()) == []
