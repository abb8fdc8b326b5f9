"""speechquant doctor: the verdict logic on injected figures, the cache, and a real measurement."""

from __future__ import annotations

import json

import pytest

from speechquant.core.cli.main import main as cli_main
from speechquant.core.evaluation import doctor
from speechquant.core.evaluation.doctor import (
    DoctorReport,
    SchemeSpeed,
    format_report,
    measure_schemes,
    run_doctor,
    summarize,
)
from speechquant.core.machine import MachineInfo, describe_cpu
from speechquant.core.quantization.schemes import scheme_advice
from speechquant.core.quantization.validation import EngineSpeed

AVX2 = describe_cpu("model name\t: AMD EPYC\nflags\t: avx2 fma\n", "x86_64")
AMX = describe_cpu(
    "model name\t: Xeon 4th\nflags\t: avx512_vnni avx512_bf16 amx_bf16 amx_int8\n", "x86_64"
)


def speed(
    scheme: str, ratio: float, lo: float, hi: float, engine: str | None = None
) -> SchemeSpeed:
    return SchemeSpeed(scheme, engine, ratio, (lo, hi), {"shape": ratio})


def test_verdicts_need_the_whole_interval_on_one_side_of_one():
    assert speed("dynamic", 1.6, 1.2, 1.9, "x86").verdict().startswith("faster here: 1.60x")
    assert speed("bf16", 0.4, 0.35, 0.45).verdict().startswith("slower here (2.5x slower)")
    assert speed("dynamic", 1.3, 0.9, 1.7, "x86").verdict().startswith("no clear difference")


def test_only_measurements_that_clear_one_reach_the_advice():
    report = DoctorReport(
        machine=MachineInfo(AVX2, cores=2),
        versions={},
        python="3.11",
        engines=["x86"],
        default_engine="x86",
        speeds=[
            speed("bf16", 0.4, 0.35, 0.45),
            speed("dynamic", 1.3, 0.9, 1.7, "x86"),
            speed("static", 1.5, 1.2, 1.8, "x86"),
        ],
    )
    assert report.clear_speedups() == {"bf16": 0.4, "static": 1.5}
    advice = scheme_advice(AVX2, report.clear_speedups())
    assert advice["bf16"].startswith("bf16: emulated on this CPU")
    assert "2.5x slower than float32 here" in advice["bf16"]
    assert "static" not in advice and "dynamic" not in advice
    assert "warning: bf16: emulated on this CPU" in format_report(report)


def test_summary_is_the_geometric_mean_of_shape_medians():
    point, (lo, hi) = summarize({"a": [2.0, 2.0, 2.0], "b": [0.5, 0.5, 0.5]})
    assert point == pytest.approx(1.0)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    point, (lo, hi) = summarize({"a": [1.0, 2.0, 4.0, 2.0, 2.0]})
    assert point == pytest.approx(2.0) and lo <= 2.0 <= hi


def test_report_json_round_trip():
    report = DoctorReport(
        machine=MachineInfo(AVX2, cores=2, threads=2, capability="AVX2"),
        versions={"torch": "2.11.0"},
        python="3.11.7",
        engines=["x86", "onednn"],
        default_engine="x86",
        speeds=[speed("bf16", 0.4, 0.3, 0.5), speed("dynamic", 1.5, 1.2, 1.8, "onednn")],
        rounds=5,
        seconds=9.5,
        measured_at="2026-12-01T00:00:00+00:00",
        loadavg=(3.5, 2.0),
    )
    data = json.loads(json.dumps(report.to_json()))
    assert data["native_bf16"] is False and data["busy"] is True
    back = DoctorReport.from_json(data)
    assert back.to_json() == report.to_json()
    assert back.best("dynamic").engine == "onednn"


def test_measure_schemes_times_every_scheme_against_float32_in_one_process():
    speeds, rounds = measure_schemes(shapes=(("small", 8, 64, 64),), rounds=3, budget_seconds=0.005)
    variants = {s.variant for s in speeds}
    assert "bf16" in variants
    assert any(v.startswith("dynamic (") for v in variants)
    assert any(v.startswith("static (") for v in variants)
    assert rounds == 3
    assert all(s.speedup > 0 and s.speedup_ci[0] <= s.speedup_ci[1] for s in speeds)


def test_run_doctor_caches_per_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    calls = []

    def fake_measure(**kwargs):
        calls.append(kwargs)
        return [speed("bf16", 0.4, 0.3, 0.5)], 3

    monkeypatch.setattr(doctor, "measure_schemes", fake_measure)
    first = run_doctor()
    again = run_doctor()
    assert len(calls) == 1 and again.to_json() == first.to_json()
    assert doctor.cached_report() is not None
    run_doctor(refresh=True)
    assert len(calls) == 2


def test_cli_doctor_json_describes_the_machine_without_timing(capsys):
    assert cli_main(["doctor", "--json", "--no-bench"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["machine"]["cores"] >= 1 and data["versions"]["torch"].startswith("2.11")
    assert data["speeds"] == [] and data["engines"]


@pytest.mark.slow
def test_doctor_on_this_machine_finds_bf16_slow_where_it_is_emulated(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    assert cli_main(["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    bf16 = next(s for s in data["speeds"] if s["scheme"] == "bf16")
    if data["native_bf16"]:
        pytest.skip("this CPU has native bf16; the emulated case cannot be checked here")
    assert bf16["speedup"] < 1 and bf16["verdict"].startswith("slower here")
    assert cli_main(["doctor"]) == 0  # the cached report, formatted
    assert "bf16 is emulated here" in capsys.readouterr().out


def test_auto_preset_takes_the_fastest_scheme_measured_here_per_family(tiny_model):
    from speechquant.core.errors import PlanError
    from speechquant.core.quantization.presets import MeasuredSpeed, make_preset
    from speechquant.core.quantization.tree import build_tree

    tree = build_tree(tiny_model.mods)
    speeds = {
        "dynamic": MeasuredSpeed(1.6, 1.2, "onednn"),
        "static": MeasuredSpeed(1.2, 1.05, "x86"),
        "bf16": MeasuredSpeed(0.4, 0.3),
    }
    plan = make_preset("auto", tree, speeds=speeds)
    w2v = "encoder.wav2vec2.model"
    assert plan.entries[f"{w2v}.encoder.layers"] == "dynamic"
    assert plan.entries[f"{w2v}.feature_projection"] == "dynamic"
    assert plan.entries[f"{w2v}.feature_extractor"] == "static"  # no Linear: dynamic cannot act
    assert "bf16" not in plan.entries.values()
    assert not any(path.startswith("encoder.ctc_lin") for path in plan.entries)
    assert plan.settings.engine == "onednn"
    slow = {name: MeasuredSpeed(0.8, 0.6, None) for name in speeds}
    assert make_preset("auto", tree, speeds=slow).entries == {}
    unclear = {"dynamic": MeasuredSpeed(1.3, 0.9, "x86")}  # interval reaches below 1
    assert make_preset("auto", tree, speeds=unclear).entries == {}
    with pytest.raises(PlanError, match="speechquant doctor"):
        make_preset("auto", tree)


def test_doctor_report_gives_the_best_engine_per_scheme():
    report = DoctorReport(
        machine=MachineInfo(AVX2, cores=2),
        versions={},
        python="3.11",
        engines=["x86", "onednn"],
        default_engine="x86",
        speeds=[
            speed("dynamic", 1.3, 1.1, 1.5, "x86"),
            speed("dynamic", 1.7, 1.4, 1.9, "onednn"),
            speed("bf16", 0.4, 0.3, 0.5),
        ],
    )
    measured = report.measured_speeds()
    assert measured["dynamic"].engine == "onednn" and measured["dynamic"].lower == 1.4
    assert report.engine_speeds() == [
        EngineSpeed("dynamic", "x86", 1.3, 1.1, 1.5),
        EngineSpeed("dynamic", "onednn", 1.7, 1.4, 1.9),
    ]
    assert measured["bf16"].speedup == 0.4


def test_plan_bench_and_export_warn_when_another_engine_is_clearly_faster_here(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    fake = [speed("dynamic", 0.85, 0.81, 1.06, "x86"), speed("dynamic", 1.62, 1.49, 1.9, "onednn")]
    monkeypatch.setattr(doctor, "measure_schemes", lambda **kwargs: (fake, 3))
    run_doctor(refresh=True)
    plan = tmp_path / "plan.json"
    args = ["plan", "replica:wav2vec2-tiny", "--preset", "all-dynamic", "-o", str(plan)]
    assert cli_main(args) == 0
    warned = "warning: dynamic: engine onednn is faster here than the plan's x86"
    assert warned in capsys.readouterr().err
    onednn = ["plan", "replica:wav2vec2-tiny", "--preset", "all-dynamic", "--engine", "onednn"]
    assert cli_main([*onednn, "-o", str(tmp_path / "onednn.json")]) == 0
    assert "engine onednn is faster" not in capsys.readouterr().err
    export = ["export", "replica:wav2vec2-tiny", "--plan", str(plan), "--out"]
    assert cli_main([*export, str(tmp_path / "export")]) == 0
    assert capsys.readouterr().err.count(warned) == 1
    assert cli_main([*export, str(tmp_path / "export2"), "--engine", "onednn"]) == 0
    assert "engine onednn is faster" not in capsys.readouterr().err
