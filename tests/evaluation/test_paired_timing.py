"""Numbers a user can trust: paired timing order, no stale baseline timings, determinism,
load and thread guards, machine fingerprints."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest
import soundfile as sf
import torch
from torch import nn

from speechquant.core.cli.commands import warn_threads
from speechquant.core.data.datasets import open_dataset
from speechquant.core.evaluation.bench import (
    BenchSettings,
    benchmark,
    paired_benchmark,
    timing_order,
)
from speechquant.core.evaluation.experiment import baseline_key, run_baseline
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.load import (
    _Sample,
    load_report,
    parse_loadavg,
    parse_proc_stat,
    thread_warning,
)
from speechquant.core.evaluation.measure import PlanMeasurer
from speechquant.core.evaluation.results import BenchResult, compare
from speechquant.core.machine import CpuInfo, MachineInfo
from speechquant.core.model.loaded import Transcript
from speechquant.core.model.long_audio import Window
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree

from ..helpers import fixed_waves

BENCH = BenchSettings(warmup=0, threads=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust-data")
    for i, wave in enumerate(fixed_waves(4, seconds=0.5)):
        sf.write(root / f"utt{i}.wav", wave.numpy(), 16000)
        (root / f"utt{i}.txt").write_text(f"hello world {i}")
    return open_dataset(root)


class _Recorder:
    """A stand-in model that logs each call, to see the order the benchmark runs them in."""

    sample_rate = 16000
    plan = None
    language = None

    def __init__(self, name: str, log: list[tuple[str, str]]) -> None:
        self.source = name
        self.name = name
        self.log = log
        self.mods = nn.ModuleDict({"linear": nn.Linear(2, 2)})

    def transcribe(self, wav: torch.Tensor) -> str:
        self.log.append((self.name, "transcribe"))
        return "hello world"

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        self.log.append((self.name, "encode"))
        return wav

    def transcribe_windows(self, wav: torch.Tensor) -> Transcript:
        return Transcript(self.transcribe(wav), [Window(0, wav.numel())])

    def encode_windows(self, wav: torch.Tensor) -> list[torch.Tensor]:
        return [self.encode(wav)]


def test_timing_order_alternates():
    assert [timing_order(2, i) for i in range(4)] == [[0, 1], [1, 0], [0, 1], [1, 0]]
    assert timing_order(3, 1) == [2, 1, 0]


def test_paired_benchmark_interleaves_a_b_b_a_after_warm_up(dataset):
    log: list[tuple[str, str]] = []
    a, b = _Recorder("A", log), _Recorder("B", log)
    results = paired_benchmark([a, b], dataset, replace(BENCH, warmup=1))  # type: ignore[list-item]
    warm, timed = log[:4], log[4:]
    assert warm == [("A", "transcribe"), ("A", "encode"), ("B", "transcribe"), ("B", "encode")]
    models = [name for name, call in timed if call == "transcribe"]
    assert models == ["A", "B", "B", "A", "A", "B", "B", "A"]  # four utterances
    assert results[0].timing_session == results[1].timing_session is not None
    assert all(u.encoder_seconds is not None for u in results[0].utterances)


def test_wer_is_deterministic_run_to_run(tiny_model, dataset):
    plan = make_preset("all-dynamic", build_tree(tiny_model.mods))
    variant = apply_plan(tiny_model, plan)
    first = paired_benchmark([tiny_model, variant], dataset, BENCH)
    again = paired_benchmark([tiny_model, variant], dataset, BENCH)
    rebuilt = benchmark(apply_plan(tiny_model, plan), dataset, BENCH)
    for one, two in ((first[0], again[0]), (first[1], again[1]), (first[1], rebuilt)):
        assert [u.hyp for u in one.utterances] == [u.hyp for u in two.utterances]
        assert one.wer == two.wer


@pytest.mark.slow
@pytest.mark.realdata
def test_whisper_transcripts_are_deterministic(demo_whisper, speech_dir):
    data = open_dataset(speech_dir / "manifest.csv").first(3)
    plan = make_preset("all-dynamic", build_tree(demo_whisper.mods))
    variant = apply_plan(demo_whisper, plan)
    first = paired_benchmark([demo_whisper, variant], data, BENCH)
    again = paired_benchmark([demo_whisper, variant], data, BENCH)
    for one, two in zip(first, again, strict=True):
        assert [u.hyp for u in one.utterances] == [u.hyp for u in two.utterances]


def test_a_cached_baselines_timing_is_never_used_for_a_ratio(tiny_model, dataset, tmp_path):
    history = HistoryStore(tmp_path / "h.sqlite")
    stored = run_baseline(tiny_model, dataset, BENCH, history).bench
    # a newer cached baseline under the same key whose timings are 1000x slow (a busy machine)
    stale = replace(stored, started_at="2099-01-01T00:00:00+00:00", timing_session="old")
    stale.utterances = [replace(u, seconds=u.seconds * 1000) for u in stored.utterances]
    key = baseline_key(tiny_model, dataset, BENCH)
    history.add_run(stale.to_json(), kind="baseline", cache_key=key)

    measurer = PlanMeasurer(tiny_model, dataset, BENCH, history)
    base = measurer.baseline()
    assert base.cached and base.bench is not None
    assert base.bench.started_at.startswith("2099")
    plan = make_preset("all-dynamic", build_tree(tiny_model.mods))
    m = measurer.measure(plan, "all-dynamic", "single")
    c = m.comparison
    assert c is not None and c.paired
    assert c.baseline_started_at != stale.started_at  # timed against a fresh float run
    assert 0.1 < m.speedup < 10  # not ~1000x: the stale timings were not divided
    assert m.wer == pytest.approx(m.bench.wer)  # type: ignore[union-attr]

    # compared directly, the cached baseline gives ΔWER but no speed-up
    plain = replace(m.bench, comparison=None)  # type: ignore[type-var]
    direct = compare(base.bench, plain)
    assert direct.speedup is None and not direct.paired
    assert "another session" in direct.warnings[0]


def _result(machine: MachineInfo, session: str) -> BenchResult:
    rows = [
        {"id": f"u{i}", "ref": "a b", "hyp": "a b", "seconds": 1.0, "audio_seconds": 2.0}
        for i in range(3)
    ]
    data = {
        "source": "s", "plan": None, "scheme_summary": {}, "engine": "x86", "threads": 1,
        "n_utterances": 3, "audio_seconds": 6.0, "wer": 0.0, "insertions": 0, "deletions": 0,
        "substitutions": 0, "ref_words": 6, "rtf": 0.5, "rtf_encoder": None, "warmup": 0,
        "repeats": 1, "model_bytes": 10, "file_bytes": 10, "peak_rss_bytes": 1, "skipped": [],
        "utterances": rows, "torch_version": "x", "speechbrain_version": "y",
        "started_at": "2026-01-01T00:00:00+00:00", "timing_session": session,
    }  # fmt: skip
    result = BenchResult.from_json(data)
    result.machine = machine
    return result


def test_different_machines_are_never_divided():
    avx2 = MachineInfo(CpuInfo("AMD EPYC", "x86_64", ("avx2",)), cores=2)
    amx = MachineInfo(CpuInfo("Intel Xeon", "x86_64", ("amx_int8", "avx512f")), cores=8)
    c = compare(_result(avx2, "same"), _result(amx, "same"))
    assert c.speedup is None and not c.paired and not c.significant_speed
    assert "different machines" in c.warnings[0] and "Intel Xeon" in c.warnings[0]
    same = compare(_result(avx2, "same"), _result(avx2, "same"))
    assert same.paired and same.speedup == pytest.approx(1.0)


def test_old_runs_without_the_new_keys_still_load():
    old = _result(MachineInfo(CpuInfo("x", "y"), cores=1), "s").to_json()
    for key in ("wer_ci", "machine", "load", "timing_session", "comparison"):
        old.pop(key)
    for u in old["utterances"]:
        u.pop("errors", None), u.pop("ref_words", None), u.pop("encoder_seconds", None)
    loaded = BenchResult.from_json(old)
    assert loaded.machine is None and loaded.timing_session is None
    assert compare(loaded, loaded).delta_wer == 0.0  # counts recomputed from the texts


PROC_STAT = """cpu  100 0 50 1000 10 0 5 20 0 0
cpu0 50 0 25 500 5 0 2 10 0 0
cpu1 50 0 25 500 5 0 3 10 0 0
intr 12345
"""


def test_proc_parsing():
    assert parse_proc_stat(PROC_STAT) == (175.0, 2)
    assert parse_loadavg("1.50 0.80 0.40 3/200 999\n") == (1.5, 0.8, 0.4)


def test_busy_machine_is_flagged():
    start = _Sample(wall=0.0, machine_busy=100.0, own=10.0, cpus=2)
    quiet = load_report(start, _Sample(10.0, 115.0, 24.0, 2), (0.5, 0.5, 0.5))
    assert quiet.other_cpu_seconds == pytest.approx(1.0) and not quiet.busy
    busy = load_report(start, _Sample(10.0, 130.0, 20.0, 2), (2.5, 2.0, 1.0))
    assert busy.other_cores == pytest.approx(2.0) and busy.busy
    assert "busy" in busy.warnings[0]
    assert busy.to_json()["loadavg"] == [2.5, 2.0, 1.0]


def test_every_result_records_its_load_and_machine(tiny_model, dataset):
    result = benchmark(tiny_model, dataset.first(1), BENCH)
    assert result.load is not None and result.load.wall_seconds > 0
    assert result.machine is not None and result.machine.threads == 1
    data = result.to_json()
    assert {"loadavg", "busy"} <= set(data["load"])


def test_thread_warning(capsys):
    assert thread_warning(2, cores=2) is None and thread_warning(None, cores=2) is None
    text = thread_warning(999, cores=2)
    assert text is not None and "999" in text and "2 cores" in text
    warn_threads(10_000)
    assert "warning: threads 10000 exceed" in capsys.readouterr().err
    args = argparse.Namespace(threads=None)
    warn_threads(args.threads)
    assert capsys.readouterr().err == ""


def test_comparison_rows_divide_only_paired_runs():
    from speechquant.core.evaluation.results import comparison_rows

    machine = MachineInfo(CpuInfo("AMD EPYC", "x86_64", ("avx2",)), cores=2)
    base = _result(machine, "one").to_json()
    paired = {**_result(machine, "one").to_json(), "plan": {"name": "p"}, "model_bytes": 5}
    for u in paired["utterances"]:
        u["seconds"] = 0.5
    later = {**paired, "timing_session": "two", "history": {"id": 3}}
    rows = comparison_rows([base, paired, later])
    assert rows[0]["speedup"] == 1.0 and rows[0]["delta_wer"] == 0.0
    assert rows[1]["speedup"] == pytest.approx(2.0) and rows[1]["size_ratio"] == 2.0
    assert rows[2]["speedup"] != rows[2]["speedup"]  # NaN: timed in another session
    assert rows[2]["comparison"].warnings
