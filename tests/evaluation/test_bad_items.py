"""One bad utterance is that utterance's skip reason, never the end of a run; one limit rule."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import soundfile as sf
import torch

from speechquant.core.cli.main import main
from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import DataError, SpeechquantWarning
from speechquant.core.evaluation.bench import BenchSettings, benchmark
from speechquant.core.evaluation.experiment import quantize_model, run_compare
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree

from ..helpers import fixed_waves

SOURCE = "replica:wav2vec2-tiny"


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory) -> Path:
    """Four good utterances and clips of 1, 200 and 399 samples, plus a WAV cut to 8 samples."""
    root = tmp_path_factory.mktemp("bad-data")
    for i, wave in enumerate(fixed_waves(4, seconds=1.0)):
        sf.write(root / f"good{i}.wav", wave.numpy(), 16000)
        (root / f"good{i}.txt").write_text(f"good number {i}")
    for n in (1, 200, 399):
        sf.write(root / f"short{n}.wav", fixed_waves(1, seconds=1.0)[0][:n].numpy(), 16000)
        (root / f"short{n}.txt").write_text("too short")
    sf.write(root / "cut.wav", fixed_waves(1)[0].numpy(), 16000)
    data = (root / "cut.wav").read_bytes()
    (root / "cut.wav").write_bytes(data[: 44 + 16])
    (root / "cut.txt").write_text("cut short")
    return root


def test_short_clips_are_skipped_with_a_reason(tiny_model, bad_data):
    result = benchmark(tiny_model, open_dataset(bad_data), BenchSettings(warmup=1)).to_json()
    assert result["n_utterances"] == 4
    reasons = {s["id"]: s["reason"] for s in result["skipped"]}
    assert set(reasons) == {"short1", "short200", "short399", "cut"}
    assert all("shorter than the 25 ms" in r or "cannot read" in r for r in reasons.values())


def test_any_exception_of_one_utterance_is_its_skip_reason(tiny_model, bad_data, monkeypatch):
    original = tiny_model.transcribe_windows
    calls = {"n": 0}

    def flaky(wav):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("Kernel size can't be greater than actual input size\nmore")
        return original(wav)

    monkeypatch.setattr(tiny_model, "transcribe_windows", flaky)
    result = benchmark(tiny_model, open_dataset(bad_data), BenchSettings(warmup=0)).to_json()
    failed = [s for s in result["skipped"] if "RuntimeError" in s["reason"]]
    assert len(failed) == 1 and "\n" not in failed[0]["reason"]
    assert result["n_utterances"] == 3


def test_compare_keeps_the_baseline_and_the_plans(tiny_model, bad_data):
    plans = [make_preset("all-dynamic", build_tree(tiny_model.mods))]
    results = run_compare(tiny_model, plans, open_dataset(bad_data), BenchSettings(warmup=0), None)
    assert [r.result["n_utterances"] for r in results] == [4, 4]


def test_short_and_empty_calibration_items_are_named(tiny_model, bad_data, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "empty.txt").write_text("nothing here")
    (tmp_path / "short3.wav").write_bytes((bad_data / "short200.wav").read_bytes())
    (tmp_path / "short3.txt").write_text("short")
    sf.write(tmp_path / "zgood.wav", fixed_waves(1)[0].numpy(), 16000)
    (tmp_path / "zgood.txt").write_text("fine")
    plan = make_preset("tutorial", build_tree(tiny_model.mods))
    settings = BenchSettings(calib=str(tmp_path), calib_n=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, ids = quantize_model(tiny_model, plan, None, settings)
    assert ids == ["zgood"]
    said = [str(w.message) for w in caught if issubclass(w.category, SpeechquantWarning)]
    assert any("empty" in m and "calibration item" in m for m in said), said
    assert any("short3" in m and "25 ms" in m for m in said), said


@pytest.mark.parametrize("command", ["bench", "compare"])
def test_limit_zero_is_refused(command, bad_data, capsys):
    assert main([command, SOURCE, "--data", str(bad_data), "--limit", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --limit must be at least 1")


def test_limit_rule_in_python():
    with pytest.raises(DataError, match="--limit must be at least 1"):
        BenchSettings(limit=0)


def test_transcribe_skips_a_short_clip_and_refuses_a_missing_file(bad_data, capsys):
    good, short = str(bad_data / "good0.wav"), str(bad_data / "short200.wav")
    assert main(["transcribe", SOURCE, good, short]) == 1
    printed = capsys.readouterr()
    assert "good0.wav" in printed.out and f"skipped {short}" in printed.err
    assert main(["transcribe", SOURCE, good, str(bad_data / "nope.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: audio file") and "does not exist" in err[-1]


def test_model_layer_refuses_a_short_clip(tiny_model):
    with pytest.raises(DataError, match="0.1 ms long"):
        tiny_model.transcribe(torch.zeros(1))


# --- output paths are checked before the work -----------------------------------------------


@pytest.mark.parametrize(
    ("option", "target", "message"),
    [
        ("--json", "folder", "is a folder"),
        ("--json", "file/inside.json", "is a file, not a folder"),
        ("--plot", "folder", "is a folder"),
    ],
)
def test_bad_output_path_is_refused_before_work(
    tmp_path, capsys, monkeypatch, option, target, message
):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    import speechquant.core.cli.commands as commands

    def never(*args, **kwargs):
        raise AssertionError("the model was opened before the output path was checked")

    monkeypatch.setattr(commands, "open_model", never)
    argv = ["compare", SOURCE, "--data", "demo", option, str(tmp_path / target)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {option}") and message in err[-1]


def test_missing_output_folders_are_created(tmp_path):
    from speechquant.core.cli.main import build_parser
    from speechquant.core.cli.outputs import check_outputs

    args = build_parser().parse_args(
        ["search", SOURCE, "--data", "d", "--max-wer-increase", "1",
         "-o", str(tmp_path / "a/plan.json"), "--json", str(tmp_path / "b/c/out.json"),
         "--plot", str(tmp_path / "d/p.png")]
    )  # fmt: skip
    check_outputs(args)
    assert all((tmp_path / p).is_dir() for p in ("a", "b/c", "d"))


def test_export_out_that_is_not_an_earlier_export_is_refused_first(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["export", SOURCE, "--plan", "/no/plan.json", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists and is not empty (it is not an earlier export)" in err
    assert "overwrite=True" not in err
