"""benchmarks/bench_peers.py's pieces: statistics, the worker protocol, the wav2vec2 ONNX wrapper,
the Whisper rows of each model."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

PEERS = Path(__file__).resolve().parent.parent / "benchmarks" / "peers"
sys.path.insert(0, str(PEERS))

from env import PeersEnv  # noqa: E402
from export_wav2vec2 import CtcEncoder  # noqa: E402
from runner import System, SystemRun, WorkerError, run_interleaved  # noqa: E402
from stats import rtf_interval, speedup_interval  # noqa: E402

from speechquant.core.data.datasets import Dataset, Utterance  # noqa: E402
from speechquant.core.evaluation.doctor import DoctorReport, SchemeSpeed  # noqa: E402
from speechquant.core.machine import this_machine  # noqa: E402
from speechquant.core.model.demo_whisper import DEMO_WHISPERS, ct2_folder  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402

from .model.ct2_toy import toy_builtins  # noqa: E402


def _bench_peers() -> ModuleType:
    """benchmarks/bench_peers.py as the module ``bench_peers`` (imported once)."""
    if "bench_peers" in sys.modules:
        return sys.modules["bench_peers"]
    spec = importlib.util.spec_from_file_location("bench_peers", PEERS.parent / "bench_peers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_rtf_interval_is_exact_when_every_utterance_runs_at_the_same_rtf() -> None:
    durations = np.array([1.0, 2.0, 4.0])
    seconds = np.array([durations * 0.1, durations * 0.2, durations * 0.3])
    found = rtf_interval(seconds, durations)
    assert found.median == pytest.approx(0.2)
    assert found.low == pytest.approx(0.2) and found.high == pytest.approx(0.2)


def test_rtf_interval_widens_with_utterance_spread_and_holds_the_median() -> None:
    rng = np.random.default_rng(1)
    durations = rng.uniform(1, 8, size=40)
    seconds = durations * rng.uniform(0.05, 0.15, size=(5, 40))
    found = rtf_interval(seconds, durations)
    assert found.low < found.median < found.high
    assert found.low > 0.05 and found.high < 0.15


def test_speedup_interval_pairs_rounds() -> None:
    rng = np.random.default_rng(2)
    reference = rng.uniform(0.5, 2.0, size=(4, 10))
    # round-level load hits both systems alike: the paired ratio stays exactly 2
    load = np.array([[1.0], [1.5], [0.8], [3.0]])
    found = speedup_interval(reference * load, reference * load / 2)
    assert (found.median, found.low, found.high) == pytest.approx((2.0, 2.0, 2.0))


def test_statistics_refuse_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="equal shapes"):
        speedup_interval(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="durations"):
        rtf_interval(np.ones((2, 3)), np.ones(4))


def test_ctc_encoder_wrapper_matches_speechbrains_encoder(tiny_model) -> None:
    wrapper = CtcEncoder(tiny_model.mods.encoder).eval()
    wav = torch.randn(1, 12345)
    with torch.no_grad():
        mine = wrapper(wav)
        theirs = tiny_model.mods.encoder(wav, torch.ones(1))
    assert mine.shape == theirs.shape
    assert torch.allclose(mine, theirs, atol=1e-4)


@pytest.mark.slow
def test_workers_run_interleaved_rounds(tmp_path: Path) -> None:
    from speechquant.core.quantization.presets import make_preset
    from speechquant.core.quantization.tree import build_tree
    from speechquant.core.sources import open_model

    rng = np.random.default_rng(0)
    audio = tmp_path / "audio.npz"
    np.savez(audio, a=rng.standard_normal(16000).astype(np.float32) * 0.1,
             b=rng.standard_normal(8000).astype(np.float32) * 0.1)  # fmt: skip
    source = "replica:wav2vec2-tiny"
    make_preset("all-dynamic", build_tree(open_model(source).mods)).save(tmp_path / "plan.json")
    systems = [
        System("float", sys.executable, "worker_speechquant.py", {"source": source}),
        System("dynamic", sys.executable, "worker_speechquant.py",
               {"source": source, "plan": str(tmp_path / "plan.json")}),
    ]  # fmt: skip
    seen: list[tuple[int, list[tuple[int, int]]]] = []
    runs = run_interleaved(
        systems, ["a", "b"], audio=audio, threads=1, rounds=2, warmup_ids=["a"], log_dir=tmp_path,
        on_round=lambda done, so_far: seen.append((done, [r.seconds.shape for r in so_far])),
    )  # fmt: skip
    assert seen == [(1, [(1, 2), (1, 2)]), (2, [(2, 2), (2, 2)])]
    assert [run.system.label for run in runs] == ["float", "dynamic"]
    for run in runs:
        assert run.seconds.shape == (2, 2) and (run.seconds > 0).all()
        assert len(run.texts) == 2 and run.stable_texts
        assert run.peak_rss_mb > 100 and run.load_seconds > 0


@pytest.mark.slow
def test_a_worker_that_cannot_load_names_the_system(tmp_path: Path) -> None:
    audio = tmp_path / "audio.npz"
    np.savez(audio, a=np.zeros(1600, dtype=np.float32))
    broken = System("broken", sys.executable, "worker_speechquant.py", {"source": "replica:nope"})
    with pytest.raises(WorkerError, match="broken: SourceError"):
        run_interleaved(
            [broken], ["a"], audio=audio, threads=1, rounds=1, warmup_ids=[], log_dir=tmp_path
        )


def test_whisper_choices_are_the_built_in_whispers() -> None:
    bench = _bench_peers()
    assert {key: choice.source for key, choice in bench.WHISPERS.items()} == {
        "tiny.en": "demo:whisper-tiny-en",
        "base": "demo:whisper-base",
    }
    assert all(choice.name in DEMO_WHISPERS for choice in bench.WHISPERS.values())
    assert [c.multilingual for c in bench.WHISPERS.values()] == [False, True]


def test_whisper_rows_share_the_weights_the_language_and_the_plans(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bench = _bench_peers()
    env = PeersEnv(tmp_path / "peers-venv")  # only its interpreter's path is used here
    with toy_builtins(tmp_path_factory, prefix="sq_peers_toy"):
        choice = bench.WhisperChoice("toy-multilingual", multilingual=True)
        systems = bench.whisper_systems(env, tmp_path, choice, with_onnx=False, engine="onednn")
        joined = ct2_folder("toy-multilingual")
    assert [s.label for s in systems] == [
        "speechquant float32",
        "speechquant all-dynamic",
        "speechquant all-dynamic + int8 tied head",
        bench.SEARCH_ROW,
        "faster-whisper float32",
        "faster-whisper int8",
    ]
    assert all(s.options["language"] == "en" for s in systems)
    assert {s.options["source"] for s in systems[:4]} == {"demo:toy-multilingual"}
    peers = systems[4:]
    assert [s.options["compute_type"] for s in peers] == ["float32", "int8"]
    assert {Path(s.options["model"]) for s in peers} == {joined}
    assert (joined / "model.bin").is_file() and all(s.python == env.python for s in peers)
    dynamic, head, best = (Plan.load(s.options["plan"]) for s in systems[1:4])
    assert bench.TIED_HEAD not in dynamic.entries and head.entries[bench.TIED_HEAD] == "dynamic"
    assert {k: v for k, v in head.entries.items() if k != bench.TIED_HEAD} == dynamic.entries
    assert best.entries == head.entries and best.settings.decoder_step == "scripted"
    assert head.settings.decoder_step == dynamic.settings.decoder_step == "native"
    assert {p.settings.engine for p in (dynamic, head, best)} == {"onednn"}


def test_the_measured_engine_is_the_doctors_fastest_dynamic_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = _bench_peers()
    report = DoctorReport(
        machine=this_machine(2), versions={}, python="3", engines=["x86", "onednn"],
        default_engine="x86", measured_at="2026-12-02T15:00:00+00:00",
        speeds=[SchemeSpeed("dynamic", "x86", 0.85, (0.81, 1.06), {}),
                SchemeSpeed("dynamic", "onednn", 1.62, (1.49, 1.90), {}),
                SchemeSpeed("bf16", None, 3.0, (2.9, 3.1), {})],
    )  # fmt: skip
    monkeypatch.setattr(bench, "run_doctor", lambda threads: report)
    engine, why = bench.pick_engine(bench.MEASURED, 2)
    assert engine == "onednn"
    assert why == (
        "fastest dynamic engine here by speechquant doctor (1.62x float32 [95 %: 1.49-1.90], "
        "measured 2026-12-02T15:00:00+00:00)"
    )
    assert bench.pick_engine("fbgemm", 2) == ("fbgemm", "given by --engine")
    report.speeds = report.speeds[2:]
    with pytest.raises(SystemExit, match="no dynamic engine; pass --engine"):
        bench.pick_engine(bench.MEASURED, 2)


def test_a_group_shows_and_saves_every_round_but_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench_peers()
    utterances = [
        Utterance("u1", tmp_path / "u1.wav", "red green"),
        Utterance("u2", tmp_path / "u2.wav", "blue"),
    ]
    dataset = Dataset(utterances=utterances, source="test", form="manifest")
    systems = [System(label, "python", "worker.py") for label in ("a", bench.REFERENCE_ROW)]

    def fake_run(systems, ids, *, on_round, **_):  # two rounds; "a" says one word wrong
        answers = {"a": ["red grain", "blue"], bench.REFERENCE_ROW: ["red green", "blue"]}
        for done in (1, 2):
            runs = [
                SystemRun(s, np.full((done, 2), 0.5), answers[s.label], True, 200.0, 1.0)
                for s in systems
            ]
            on_round(done, runs)
        return runs

    monkeypatch.setattr(bench, "run_interleaved", fake_run)
    out = tmp_path / "out.json"
    args = argparse.Namespace(rounds=2, threads=2, warmup=0, json=out)
    results = {"format": 1, "groups": [{"model": "earlier"}]}
    saved: list[dict] = []
    monkeypatch.setattr(
        bench, "_save", lambda path, found: saved.append(json.loads(json.dumps(found)))
    )
    group = bench._group(
        "m", systems, dataset, {"u1": 2.0, "u2": 3.0}, args, tmp_path, True, results
    )
    captured = capsys.readouterr()
    assert (
        "m: 2 utterances (5 s of audio), 2 threads, 1 of 2 interleaved rounds so far"
        in captured.err
    )
    assert (
        "| a | 0.2000 [0.1667-0.2500] | 1.00 [1.00-1.00] | 33.33 [0.00-50.00] (1 / 3) | "
        "+33.33 [+0.00, +50.00] | 200 MB |" in captured.err
    )
    assert "2 interleaved rounds after 0 untimed" in captured.out and "so far" not in captured.out
    assert [g["model"] for g in saved[0]["groups"]] == ["earlier", "m"] and len(saved) == 1
    assert saved[0]["groups"][1]["rounds"] == 1 and group["rounds"] == 2
    assert [row["wer"] for row in group["rows"]] == pytest.approx([100 / 3, 0.0])
    reference = group["rows"][1][f"delta_wer_vs_{bench.REFERENCE_ROW.replace(' ', '_')}"]
    assert reference["delta"] == 0.0 and reference["ci"] == [0.0, 0.0]
    assert group["rows"][0]["wer_ci"] == pytest.approx([0.0, 50.0])
    assert results["groups"] == [{"model": "earlier"}]


def test_a_group_without_faster_whisper_pairs_every_row_with_ort_int8_too(tmp_path: Path) -> None:
    bench = _bench_peers()
    utterances = [Utterance(f"u{i}", tmp_path / f"u{i}.wav", "word") for i in range(3)]
    dataset = Dataset(utterances=utterances, source="test", form="manifest")
    load = np.array([[1.0], [2.0]])  # round-level load hits every system alike
    per_utterance = np.array([[1.0, 2.0, 3.0]])
    seconds = {"speechquant fp32": 2.0, "speechquant tutorial": 1.0, bench.ORT_INT8_ROW: 1.25}
    runs = [
        SystemRun(System(label, "python", "w.py"), per_utterance * load * scale, [], True, 1.0, 0.0)
        for label, scale in seconds.items()
    ]
    rows = bench.summarize(runs, dataset, [2.0, 2.0, 2.0], False)
    fp32_key = "speedup_vs_speechquant_fp32"
    ort_key = "speedup_vs_" + bench.ORT_INT8_ROW.replace(" ", "_")
    tutorial = rows[1]
    assert tutorial[fp32_key]["median"] == pytest.approx(2.0)
    assert tutorial[ort_key]["median"] == pytest.approx(1.25)
    assert (tutorial[ort_key]["low"], tutorial[ort_key]["high"]) == pytest.approx((1.25, 1.25))
    assert rows[2][ort_key]["median"] == pytest.approx(1.0)
    text = bench.table(rows, False)
    assert f"| x vs speechquant fp32 | x vs {bench.ORT_INT8_ROW} |" in text
    assert "| speechquant tutorial | " in text and "| 2.00 [2.00-2.00] | 1.25 [1.25-1.25] |" in text
    assert text.splitlines()[1] == "|---" * 5 + "|"


def test_the_vnni_ort_row_gets_its_own_paired_column(tmp_path: Path) -> None:
    bench = _bench_peers()
    utterances = [Utterance(f"u{i}", tmp_path / f"u{i}.wav", "word") for i in range(2)]
    dataset = Dataset(utterances=utterances, source="test", form="manifest")
    seconds = {"speechquant fp32": 2.0, "speechquant tutorial": 1.0, bench.ORT_INT8_ROW: 1.5,
               bench.ORT_VNNI_ROW: 0.8}  # fmt: skip
    runs = [
        SystemRun(System(label, "python", "w.py"), np.array([[1.0, 3.0]]) * scale, [], True, 1.0, 0)
        for label, scale in seconds.items()
    ]
    rows = bench.summarize(runs, dataset, [2.0, 2.0], False)
    vnni_key = "speedup_vs_" + bench.ORT_VNNI_ROW.replace(" ", "_")
    assert rows[1][vnni_key]["median"] == pytest.approx(0.8)
    assert rows[3][vnni_key]["median"] == pytest.approx(1.0)
    header = bench.table(rows, False).splitlines()[0]
    assert header.endswith(f"| x vs {bench.ORT_INT8_ROW} | x vs {bench.ORT_VNNI_ROW} | peak RSS |")
