"""The small bad-input cases: each gives one clear line (or a named skip), never a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import soundfile as sf

from speechquant.core.cli.main import main
from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import PlanError, SourceError, SpeechquantError, SpeechquantWarning
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.paths import building_folder, data_dir
from speechquant.core.quantization.plan import Plan
from speechquant.core.sources import open_model

from ..helpers import fixed_waves


def _result(wer: float) -> dict:
    return {
        "source": "s", "plan": None, "scheme_summary": {}, "engine": "x86", "threads": 1,
        "wer": wer, "rtf": 0.1, "rtf_encoder": None, "model_bytes": 1, "file_bytes": 1,
        "n_utterances": 1, "started_at": "2026-01-01T00:00:00+00:00", "skipped": [],
        "utterances": [],
    }  # fmt: skip


def test_damaged_history_rows_are_skipped_and_named(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite")
    good = store.add_run(_result(5.0), kind="bench", settings={})
    bad_wer = store.add_run(_result(6.0), kind="bench", settings={})
    bad_json = store.add_run(_result(7.0), kind="baseline", settings={}, cache_key="k")
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET wer = 'abc' WHERE id = ?", (bad_wer,))
        conn.execute("UPDATE runs SET result_json = '{broken' WHERE id = ?", (bad_json,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = store.list_runs()
        assert store.find_cached("k") is None
    assert sorted(r.id for r in runs) == sorted([good, bad_json])
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, SpeechquantWarning))
    assert f"history run {bad_wer} skipped" in said and f"history run {bad_json} skipped" in said
    assert f"--delete {bad_wer}" in said


def test_data_folder_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("SPEECHQUANT_DATA", str(tmp_path / "file"))
    with pytest.raises(SpeechquantError, match="is a file, not a folder; point SPEECHQUANT_DATA"):
        data_dir()
    assert main(["history"]) == 2


def test_all_unreadable_names_the_reasons(tiny_model, tmp_path):
    from speechquant.core.errors import DataError
    from speechquant.core.evaluation.bench import benchmark

    for i in range(2):
        (tmp_path / f"bad{i}.wav").write_bytes(b"RIFF nope")
        (tmp_path / f"bad{i}.txt").write_text("text")
    with pytest.raises(DataError) as info:
        benchmark(tiny_model, open_dataset(tmp_path))
    assert "bad0: cannot read audio" in str(info.value) and "skipped list" not in str(info.value)


def test_missing_relative_path_is_not_called_an_hf_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(SourceError, match="model folder models/mine does not exist"):
        open_model("models/mine")


def test_plan_path_that_is_a_folder(tmp_path):
    with pytest.raises(PlanError, match="is a folder"):
        Plan.load(tmp_path)


def test_stale_build_folders_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "export"
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f".export.build-{child.stdout.strip()}-abc"
    stale.mkdir()
    live = tmp_path / f".export.build-{os.getpid()}-xyz"
    live.mkdir()
    with building_folder(target) as tmp:
        (tmp / "f").write_text("x")
    assert not stale.exists() and live.exists() and (target / "f").is_file()


def _manifest(tmp_path: Path, header: str, row: str) -> Path:
    sf.write(tmp_path / "a.wav", fixed_waves(1)[0].numpy(), 16000)
    (tmp_path / "m.csv").write_text(f"{header}\n{row}\n")
    return tmp_path / "m.csv"


def test_extra_fields_with_transcript_last_are_read_whole(tmp_path):
    data = open_dataset(_manifest(tmp_path, "ID,duration,wav,wrd", "a,1.0,a.wav,yes, we can"))
    assert data.utterances[0].ref == "yes, we can"


def test_extra_fields_elsewhere_are_refused_by_name(tmp_path):
    manifest = _manifest(tmp_path, "ID,duration,wav,wrd,spk", "a,1.0,a.wav,yes, we can,s1")
    with pytest.raises(SpeechquantError, match="row has 6 fields but the header has 5"):
        open_dataset(manifest)


def test_plan_and_transcribe_cli_errors(tmp_path, capsys):
    assert main(["plan", "replica:wav2vec2-tiny", "--check", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["history", "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
