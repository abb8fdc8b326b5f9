"""The command line on the encoder-decoder replicas: tree, plan, bench, export, transcribe."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from speechquant.core.cli.main import main

from ..helpers import fixed_waves


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq2seq-cli-data")
    for i, wave in enumerate(fixed_waves(4, seconds=1.0, seed=21)):
        sf.write(root / f"utt{i}.wav", wave.numpy(), 16000)
        (root / f"utt{i}.txt").write_text(f"hello world number {i}")
    return root


@pytest.mark.parametrize("source", ["replica:crdnn-tiny", "replica:conformer-tiny"])
def test_tree_plan_bench_export_transcribe(source, data_dir, tmp_path, capsys):
    assert main(["tree", source]) == 0
    printed = capsys.readouterr().out
    assert "no static: " in printed and "dynamic" in printed
    plan = tmp_path / "plan.json"
    assert main(["plan", source, "--preset", "all-dynamic", "-o", str(plan)]) == 0
    capsys.readouterr()
    report = tmp_path / "bench.json"
    bench = ["bench", source, "--data", str(data_dir), "--plan", str(plan), "--warmup", "0"]
    assert main([*bench, "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["n_utterances"] == 4 and result["plan"]["name"] == "all-dynamic"
    assert "WER" in capsys.readouterr().out
    out = tmp_path / "export"
    assert main(["export", source, "--plan", str(plan), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["transcribe", str(out), str(data_dir / "utt0.wav")]) == 0
    assert "utt0.wav" in capsys.readouterr().out
    assert main(["tree", str(out), "--json"]) == 0
    assert "already quantized" in capsys.readouterr().out
