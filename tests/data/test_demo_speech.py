"""The shipped real demo speech: 32 LJSpeech utterances, their transcripts, and the wheel."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from speechquant.core.data.datasets import iter_loaded, open_dataset, shipped_demo_folder

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SPEECHQUANT_SPEECH", ROOT.parent / "shared" / "data" / "speech"))


def test_demo_is_the_shipped_real_speech():
    dataset = open_dataset("demo")
    assert dataset.form == "demo" and dataset.source == "demo"
    assert len(dataset) == 32
    assert dataset.ids == [f"LJ001-{i:04d}" for i in range(1, 33)]
    assert dataset.describe().startswith("32 utterances, 222 s, LJSpeech")
    assert dataset.utterances[1].ref == "in being comparatively modern."


def test_every_file_decodes_at_its_rate_and_matches_its_row():
    folder = shipped_demo_folder()
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 32
    assert {p.name for p in folder.glob("*.flac")} == {r["wav"] for r in rows}
    for row in rows:
        assert Path(row["wav"]).stem == row["ID"]
        info = sf.info(str(folder / row["wav"]))
        assert info.samplerate == int(row["sample_rate"]) == 22050
        assert info.channels == 1
        assert info.duration == pytest.approx(float(row["duration"]), abs=0.01)
        assert row["wrd"].strip()
    waves = [w for _, w in iter_loaded(open_dataset("demo", limit=2), 16000)]
    assert len(waves) == 2 and all(w.numel() > 16000 for w in waves)
    assert (folder / "LICENSE.md").read_text().count("public domain") >= 2


@pytest.mark.skipif(not (SHARED / "manifest.csv").is_file(), reason="shared speech set absent")
def test_transcripts_match_the_published_ljspeech_text():
    with open(SHARED / "manifest.csv", newline="", encoding="utf-8") as handle:
        published = {r["ID"]: r["wrd"] for r in csv.DictReader(handle)}
    for utterance in open_dataset("demo"):
        assert utterance.ref == published[utterance.id]


@pytest.mark.slow
def test_the_wheel_carries_the_demo_speech_and_its_licence(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("speechquant-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if n.startswith("speechquant/resources/demo_speech/")}
    assert len([n for n in shipped if n.endswith(".flac")]) == 32
    assert "speechquant/resources/demo_speech/manifest.csv" in names
    assert "speechquant/resources/demo_speech/LICENSE.md" in names
