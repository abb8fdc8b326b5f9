"""The command line on the tiny replica with generated data (in process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import soundfile as sf

from speechquant.core.cli.main import main
from speechquant.core.evaluation.bench import BENCH_KEYS, RESULT_KEYS

from ..helpers import fixed_waves

SOURCE = "replica:wav2vec2-tiny"
COMPARISON_KEYS = [
    "delta_wer", "delta_wer_ci", "p_worse", "speedup", "speedup_ci", "speedup_encoder",
    "speedup_encoder_ci", "size_ratio", "significant_wer", "significant_speed",
    "baseline_started_at", "paired", "warnings",
]  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-data")
    for i, wave in enumerate(fixed_waves(6, seconds=1.0)):
        sf.write(root / f"utt{i}.wav", wave.numpy(), 16000)
        (root / f"utt{i}.txt").write_text(f"hello world number {i}")
    (root / "broken.wav").write_bytes(b"RIFF not really audio")
    (root / "broken.txt").write_text("this one is corrupt")
    return root


def test_bench_json_has_exactly_the_documented_keys(data_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                SOURCE,
                "--data",
                str(data_dir),
                "--limit",
                "3",
                "--warmup",
                "0",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert sorted(result) == sorted(RESULT_KEYS)
    assert set(BENCH_KEYS) <= set(result)  # the keys before intervals were added stay
    assert result["comparison"] is None  # the float model alone compares with nothing
    low, high = result["wer_ci"]
    assert low <= result["wer"] <= high
    assert {"loadavg", "busy"} <= set(result["load"])
    assert result["machine"]["cores"] >= 1 and result["machine"]["key"]
    assert result["plan"] is None and result["n_utterances"] == 2
    assert result["skipped"][0]["id"] == "broken"
    assert "WER" in capsys.readouterr().out


def test_plan_compare_and_history(data_dir, tmp_path, capsys):
    plan = tmp_path / "tutorial.json"
    assert main(["plan", SOURCE, "--preset", "tutorial", "-o", str(plan)]) == 0
    assert main(["plan", SOURCE, "--check", str(plan)]) == 0
    out = tmp_path / "compare.json"
    png = tmp_path / "chart.png"
    args = [
        "compare",
        SOURCE,
        "--data",
        str(data_dir),
        "--limit",
        "3",
        "--calib-n",
        "2",
        "--warmup",
        "0",
    ]
    assert (
        main(
            [
                *args,
                "--plan",
                str(plan),
                "--preset",
                "all-dynamic",
                "--json",
                str(out),
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    results = json.loads(out.read_text())
    assert [r["plan"]["name"] if r["plan"] else None for r in results] == [
        None,
        "tutorial",
        "all-dynamic",
    ]
    assert all(sorted(r) == sorted(RESULT_KEYS) for r in results)
    assert results[0]["comparison"] is None
    sessions = {r["timing_session"] for r in results}
    assert len(sessions) == 1  # the float model and both plans were timed together
    for compared in results[1:]:
        c = compared["comparison"]
        assert sorted(c) == sorted(COMPARISON_KEYS)
        assert c["paired"] and c["speedup"] > 0 and c["speedup_ci"][0] <= c["speedup_ci"][1]
        assert c["baseline_started_at"] == results[0]["started_at"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "tutorial" in table and "speed-up" in table
    assert main(["history", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert {"baseline", "compare"} <= {r["kind"] for r in runs}
    assert main([*args, "--preset", "bf16"]) == 0
    assert "measured on" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tree", "/no/such/model"], "does not exist"),
        (["bench", SOURCE, "--data", "/no/such/data"], "DATA /no/such/data does not exist"),
        (["plan", SOURCE, "--check", "/no/plan.json"], "does not exist"),
        (["bench", SOURCE, "--data", "demo", "--plan", "/no/plan.json"], "does not exist"),
    ],
)
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]


def test_static_plan_without_calibration_room(data_dir, tmp_path, capsys):
    plan = tmp_path / "tutorial.json"
    main(["plan", SOURCE, "--preset", "tutorial", "-o", str(plan)])
    code = main(["bench", SOURCE, "--data", str(data_dir), "--plan", str(plan), "--calib-n", "20"])
    assert code == 2
    assert "calibration needs 20 utterances" in capsys.readouterr().err


def test_console_script_help():
    done = subprocess.run(
        [sys.executable, "-m", "speechquant.core.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("tree", "plan", "bench", "compare", "transcribe", "history", "demo"):
        assert command in done.stdout


def test_export_then_tree_bench_and_transcribe(data_dir, tmp_path, capsys):
    plan = tmp_path / "tutorial.json"
    main(["plan", SOURCE, "--preset", "tutorial", "-o", str(plan)])
    out = tmp_path / "export"
    args = [
        "export",
        SOURCE,
        "--plan",
        str(plan),
        "--calib",
        str(data_dir),
        "--calib-n",
        "2",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert (
        "smaller" in printed.out and "calibrated on 1 utterances: utt0" in printed.err
    )  # broken.wav skipped
    assert main(["tree", str(out), "--json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert "StaticQuantWrapper" in json.dumps(tree)
    assert main(["bench", str(out), "--data", str(data_dir), "--limit", "2", "--warmup", "0"]) == 0
    assert "WER" in capsys.readouterr().out
    assert main(["transcribe", str(out), str(data_dir / "utt0.wav")]) == 0
    assert "utt0.wav" in capsys.readouterr().out
    assert main(args) == 2
    assert "error:" in capsys.readouterr().err


def test_plan_prints_the_estimate_and_hardware_warnings(tmp_path, capsys, monkeypatch):
    from speechquant.core.cli import commands
    from speechquant.core.machine import CpuInfo

    monkeypatch.setattr(commands, "this_cpu", lambda: CpuInfo("AVX2 box", "x86_64", ("avx2",)))
    plan = tmp_path / "bf16.json"
    assert main(["plan", SOURCE, "--preset", "bf16", "-o", str(plan)]) == 0
    err = capsys.readouterr().err
    assert "estimate: bf16: 2 entries" in err and "smaller" in err
    assert "warning: bf16: emulated on this CPU (no AVX512-BF16 or AMX)" in err
    assert main(["plan", SOURCE, "--check", str(plan)]) == 0
    captured = capsys.readouterr()
    assert "estimate: bf16: 2 entries" in captured.out and "warning: bf16" in captured.err
    assert main(["tree", SOURCE, "--depth", "1"]) == 0
    assert "note: bf16: emulated" in capsys.readouterr().out
    assert main(["tree", SOURCE, "--depth", "1", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["advice"]) == {"bf16"}
