from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechquant.core.data.datasets import (
    Dataset,
    SkippedItem,
    Utterance,
    iter_loaded,
    open_calibration,
    open_dataset,
    split_calibration,
)
from speechquant.core.errors import Cancelled, DataError
from speechquant.core.progress import CancelToken, Progress


def write_tone(
    path: Path,
    seconds: float = 0.5,
    rate: int = 16000,
    channels: int = 1,
    subtype: str = "PCM_16",
    seed: int = 0,
) -> Path:
    rng = np.random.default_rng(seed)
    frames = int(rate * seconds)
    t = np.arange(frames) / rate
    wave = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(frames)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), rate, subtype=subtype)
    return path


def write_manifest(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    fields = list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def librispeech(tmp_path: Path) -> Path:
    root = tmp_path / "LibriSpeech" / "test-clean"
    lines = {
        ("84", "121123"): ["84-121123-0001 GO DO YOU HEAR", "84-121123-0000 BUT IN LESS THAN"],
        ("1089", "134686"): [
            "1089-134686-0000 HE HOPED THERE WOULD BE STEW",
            "1089-134686-0001 STUFF IT INTO YOU",
            "1089-134686-0002 THIS LINE HAS NO AUDIO",
            "1089-134686-0003",
        ],
    }
    for (speaker, chapter), entries in lines.items():
        folder = root / speaker / chapter
        folder.mkdir(parents=True)
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(entries) + "\n")
        for seed, entry in enumerate(entries):
            utt_id = entry.split()[0]
            if utt_id != "1089-134686-0002":
                write_tone(folder / f"{utt_id}.flac", seed=seed)
    return root


def test_librispeech_tree_sorted_with_bad_lines_skipped(librispeech: Path) -> None:
    dataset = open_dataset(librispeech)
    assert dataset.form == "librispeech"
    assert dataset.ids == [
        "1089-134686-0000",
        "1089-134686-0001",
        "84-121123-0000",
        "84-121123-0001",
    ]
    assert dataset.utterances[0].ref == "HE HOPED THERE WOULD BE STEW"
    reasons = {s.id: s.reason for s in dataset.skipped}
    assert "missing" in reasons["1089-134686-0002"]
    assert reasons["1089-134686-0003"] == "empty reference"


def test_order_is_deterministic(librispeech: Path) -> None:
    assert open_dataset(librispeech).ids == open_dataset(str(librispeech)).ids


def test_iter_loaded_skips_corrupt_and_empty_audio(librispeech: Path) -> None:
    folder = librispeech / "84" / "121123"
    (folder / "84-121123-0000.flac").write_bytes(b"fLaC" + bytes(300))
    (folder / "84-121123-0001.flac").unlink()
    sf.write(folder / "84-121123-0001.wav", np.zeros(0, dtype=np.float32), 16000)
    dataset = open_dataset(librispeech)
    seen: list[Progress] = []
    loaded = list(iter_loaded(dataset, 16000, progress=seen.append))
    assert [u.id for u, _ in loaded] == ["1089-134686-0000", "1089-134686-0001"]
    assert all(w.ndim == 1 and w.numel() == 8000 for _, w in loaded)
    reasons = {s.id: s.reason for s in dataset.skipped}
    assert "84-121123-0000.flac" in reasons["84-121123-0000"]
    assert "empty" in reasons["84-121123-0001"]
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == 4


def test_iter_loaded_honours_cancel(librispeech: Path) -> None:
    token = CancelToken()
    stream = iter_loaded(open_dataset(librispeech), 16000, cancel=token)
    next(stream)
    token.cancel()
    with pytest.raises(Cancelled):
        next(stream)


def test_manifest_mixed_rates_channels_and_formats(tmp_path: Path) -> None:
    specs = [
        ("c", 8000, 1, "PCM_16"),
        ("a", 22050, 2, "FLOAT"),
        ("b", 44100, 2, "PCM_16"),
        ("d", 16000, 1, "PCM_24"),
    ]
    rows = []
    for name, rate, channels, subtype in specs:
        write_tone(tmp_path / "audio" / f"{name}.wav", 1.0, rate, channels, subtype)
        rows.append(
            {
                "ID": name,
                "duration": "1.0",
                "wav": f"audio/{name}.wav",
                "spk_id": "s1",
                "wrd": "A B",
            }
        )
    rows.append({"ID": "e", "duration": "x", "wav": "audio/none.wav", "spk_id": "s", "wrd": "X"})
    rows.append({"ID": "f", "duration": "1", "wav": "audio/a.wav", "spk_id": "s", "wrd": "  "})
    rows.append({"ID": "a", "duration": "1", "wav": "audio/b.wav", "spk_id": "s", "wrd": "dup"})
    manifest = write_manifest(tmp_path / "test.csv", rows)
    dataset = open_dataset(manifest)
    assert dataset.form == "manifest"
    assert dataset.ids == ["a", "b", "c", "d"]
    assert dataset.utterances[0].duration == 1.0
    assert dataset.utterances[0].audio_path == tmp_path / "audio" / "a.wav"
    assert {s.id for s in dataset.skipped} == {"a", "e", "f"}
    waves = dict((u.id, w) for u, w in iter_loaded(dataset, 16000))
    assert all(abs(w.numel() - 16000) <= 2 for w in waves.values())


def test_tsv_manifest_and_folder_holding_manifest(tmp_path: Path) -> None:
    write_tone(tmp_path / "x.wav")
    write_manifest(
        tmp_path / "manifest.tsv",
        [{"ID": "x", "duration": "0.5", "wav": "x.wav", "wrd": "said, with a comma"}],
        delimiter="\t",
    )
    for spec in (tmp_path / "manifest.tsv", tmp_path):
        dataset = open_dataset(spec)
        assert dataset.ids == ["x"]
        assert dataset.utterances[0].ref == "said, with a comma"


def test_manifest_without_required_columns(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [{"file": "a.wav", "text": "hi"}])
    with pytest.raises(DataError, match="ID, wav, wrd"):
        open_dataset(manifest)


def test_common_voice_tsv(tmp_path: Path) -> None:
    write_tone(tmp_path / "clips" / "common_voice_en_2.ogg", subtype="VORBIS")
    write_tone(tmp_path / "common_voice_en_1.wav", rate=48000)
    rows = [
        {"client_id": "c", "path": "common_voice_en_2.ogg", "sentence": 'He said "yes".'},
        {"client_id": "c", "path": "common_voice_en_1.wav", "sentence": "Fine."},
        {"client_id": "c", "path": "common_voice_en_3.mp3", "sentence": "Gone."},
    ]
    tsv = tmp_path / "test.tsv"
    tsv.write_text(
        "client_id\tpath\tsentence\n" + "".join(f"c\t{r['path']}\t{r['sentence']}\n" for r in rows)
    )
    dataset = open_dataset(tsv)
    assert dataset.form == "commonvoice"
    assert dataset.ids == ["common_voice_en_1", "common_voice_en_2"]
    assert dataset.utterances[1].ref == 'He said "yes".'
    assert dataset.utterances[1].audio_path == tmp_path / "clips" / "common_voice_en_2.ogg"
    assert [s.id for s in dataset.skipped] == ["common_voice_en_3"]
    assert len(list(iter_loaded(dataset, 16000))) == 2


def test_folder_with_sidecars(tmp_path: Path) -> None:
    write_tone(tmp_path / "b.wav")
    (tmp_path / "b.txt").write_text("second one\n")
    write_tone(tmp_path / "a.flac", rate=22050)
    (tmp_path / "a.txt").write_text("first one")
    write_tone(tmp_path / "sub" / "c.ogg", subtype="VORBIS")
    (tmp_path / "sub" / "c.txt").write_text("nested")
    write_tone(tmp_path / "no_ref.wav")
    write_tone(tmp_path / "blank.wav")
    (tmp_path / "blank.txt").write_text("   \n")
    write_tone(tmp_path / ".hidden.wav")
    (tmp_path / "notes.md").write_text("ignored")
    dataset = open_dataset(tmp_path)
    assert dataset.form == "folder"
    assert dataset.ids == ["a", "b", "sub/c"]
    assert dataset.utterances[1].ref == "second one"
    reasons = {s.id: s.reason for s in dataset.skipped}
    assert set(reasons) == {"blank", "no_ref"}
    assert "no_ref.txt" in reasons["no_ref"]


def test_missing_data_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds no"):
        open_dataset(tmp_path)


def test_folder_with_only_bad_items(tmp_path: Path) -> None:
    write_tone(tmp_path / "lonely.wav")
    with pytest.raises(DataError, match="no usable utterances.*lonely") as caught:
        open_dataset(tmp_path)
    assert "\n" not in str(caught.value)


def test_unknown_file_kind(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"\x00")
    with pytest.raises(DataError, match="not a .csv/.tsv"):
        open_dataset(tmp_path / "data.bin")


def test_limit_takes_first_n_and_nearby_skips(librispeech: Path) -> None:
    dataset = open_dataset(librispeech, limit=2)
    assert dataset.ids == ["1089-134686-0000", "1089-134686-0001"]
    assert dataset.skipped == []
    three = open_dataset(librispeech, limit=3)
    assert [s.id for s in three.skipped] == ["1089-134686-0002", "1089-134686-0003"]
    assert len(open_dataset(librispeech, limit=100)) == 4
    with pytest.raises(DataError, match="--limit"):
        open_dataset(librispeech, limit=0)


def _numbered(n: int) -> Dataset:
    utterances = [Utterance(f"u{i:02d}", Path(f"/x/{i}.wav"), "w") for i in range(n)]
    return Dataset("mem", "manifest", utterances, [SkippedItem("u99", "x")])


def test_split_calibration_is_disjoint_and_deterministic() -> None:
    pool = _numbered(10)
    evaluated = pool.first(4)
    calib = split_calibration(pool, 3, exclude=evaluated.ids)
    assert calib.ids == ["u04", "u05", "u06"]
    assert not set(calib.ids) & set(evaluated.ids)
    assert split_calibration(pool, 3, exclude=evaluated.ids).ids == calib.ids
    assert split_calibration(pool, 2).ids == ["u00", "u01"]


def test_split_calibration_not_enough_left() -> None:
    pool = _numbered(5)
    with pytest.raises(DataError, match="smaller evaluation limit or calibration count"):
        split_calibration(pool, 3, exclude=pool.first(4).ids)
    with pytest.raises(DataError, match="smaller calibration count"):
        split_calibration(pool, 6)
    with pytest.raises(DataError, match="at least 1"):
        split_calibration(pool, 0)


def test_open_calibration_same_and_separate_data(librispeech: Path, tmp_path: Path) -> None:
    evaluated = open_dataset(librispeech, limit=2)
    calib = open_calibration(None, 2, evaluated)
    assert calib.ids == ["84-121123-0000", "84-121123-0001"]
    assert open_calibration(str(librispeech), 2, evaluated).ids == calib.ids
    with pytest.raises(DataError, match="separate calibration data"):
        open_calibration(librispeech, 3, evaluated)
    other = tmp_path / "other"
    write_tone(other / "z.wav")
    (other / "z.txt").write_text("zed")
    assert open_calibration(other, 1, evaluated).ids == ["z"]


@pytest.mark.realdata
def test_shared_speech_manifest(speech_dir: Path) -> None:
    dataset = open_dataset(speech_dir / "manifest.csv")
    assert len(dataset) == 74
    assert dataset.skipped == []
    assert dataset.ids == sorted(dataset.ids)
    loaded = list(iter_loaded(dataset, 16000))
    assert len(loaded) == 74
    assert dataset.skipped == []
    for utterance, wave in loaded:
        assert utterance.duration is not None
        assert wave.numel() / 16000 == pytest.approx(utterance.duration, abs=0.01)
