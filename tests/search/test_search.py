"""Units, sensitivity analysis and plan search on the tiny replica with generated audio."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
from torch import nn

from speechquant.core.cli.main import main
from speechquant.core.data.audio import load_audio
from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import Cancelled, DataError, PlanError
from speechquant.core.evaluation import executor
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.experiment import calibration_set, run_experiment
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.measure import PlanMeasurer
from speechquant.core.progress import CancelToken, Progress
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree
from speechquant.core.quantization.validation import validate_plan
from speechquant.core.search.plan_search import SCRIPTED_MOVE, SearchSettings, run_search
from speechquant.core.search.sensitivity import (
    SensitivitySettings,
    run_sensitivity,
    sensitivity_jobs,
)
from speechquant.core.search.splits import make_splits
from speechquant.core.search.units import (
    assignment_plan,
    default_units,
    merge_families,
    plan_assignment,
    restrict_schemes,
    units_at_depth,
    units_from_paths,
)

from ..helpers import fixed_waves

SOURCE = "replica:wav2vec2-tiny"
W2V = "encoder.wav2vec2.model"
BENCH = BenchSettings(warmup=0, threads=1, calib_n=2)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tiny_model):
    """1 s utterances whose references are the float model's own transcripts (float WER 0), so
    every word a quantized variant changes raises its WER."""
    root = tmp_path_factory.mktemp("search-data")
    for i, wave in enumerate(fixed_waves(10, seconds=1.0)):
        sf.write(root / f"utt{i}.wav", wave.numpy(), 16000)
        own = tiny_model.transcribe(load_audio(root / f"utt{i}.wav", 16000))
        (root / f"utt{i}.txt").write_text(own)
    return root


@pytest.fixture(scope="module")
def dataset(data_dir):
    return open_dataset(data_dir)


def test_default_units_of_wav2vec2(tiny_model):
    units = default_units(tiny_model.mods)
    assert [u.name for u in units] == [
        "feature_extractor",
        "feature_projection",
        "encoder.pos_conv_embed",
        "encoder.layers.0",
        "encoder.layers.1",
        "encoder.enc",
        "encoder.ctc_lin",
    ]
    by_name = {u.name: u for u in units}
    assert by_name["encoder.layers.0"].paths == (f"{W2V}.encoder.layers.0",)
    assert by_name["encoder.layers.0"].family == "encoder.layers.0-1"
    assert set(by_name["feature_extractor"].schemes) == {"static", "bf16"}
    assert "static" not in by_name["encoder.enc"].schemes  # BatchNorm after Linear
    tree = build_tree(tiny_model.mods)
    merged = merge_families(units, tree)
    assert [u.name for u in merged][3] == "encoder.layers.0-1"
    assert merged[3].paths == (f"{W2V}.encoder.layers.0", f"{W2V}.encoder.layers.1")
    assert [u.name for u in units_at_depth(tiny_model.mods, 2)] == [
        "encoder.wav2vec2",
        "encoder.enc",
        "encoder.ctc_lin",
    ]
    with pytest.raises(PlanError, match="nest"):
        units_from_paths(tiny_model.mods, ["encoder.enc", "encoder.enc.linear1"])
    with pytest.raises(PlanError, match="not a module"):
        units_from_paths(tiny_model.mods, ["encoder.nope"])


def _whisper_like() -> nn.ModuleDict:
    def stack(n: int) -> nn.ModuleList:
        return nn.ModuleList(nn.Sequential(nn.Linear(4, 4), nn.ReLU()) for _ in range(n))

    encoder = nn.Module()
    encoder.conv1, encoder.conv2 = nn.Conv1d(1, 4, 3), nn.Conv1d(4, 4, 3)
    encoder.layers = stack(2)
    decoder = nn.Module()
    decoder.embed_tokens = nn.Embedding(10, 4)
    decoder.layers = stack(3)
    model = nn.Module()
    model.encoder, model.decoder = encoder, decoder
    whisper = nn.Module()
    whisper.model = model
    searcher = nn.Module()
    searcher.model = whisper  # SpeechBrain's searcher holds the model a second time
    return nn.ModuleDict({"whisper": whisper, "decoder": searcher})


def test_default_units_of_whisper_skip_shared_modules():
    units = default_units(_whisper_like())
    assert [u.name for u in units] == [
        "encoder.conv1",
        "encoder.conv2",
        "encoder.layers.0",
        "encoder.layers.1",
        "decoder.layers.0",
        "decoder.layers.1",
        "decoder.layers.2",
        "decoder.embed_tokens",
    ]
    assert units[4].paths == ("whisper.model.decoder.layers.0",)
    assert units[4].family == "decoder.layers.0-2"
    generic = units_at_depth(_whisper_like(), 4)
    assert "decoder.embed_tokens" in [u.name for u in generic]
    assert not any(p.startswith("decoder.") for u in generic for p in u.paths)


def test_sensitivity_rows_changes_and_calibration(tiny_model, dataset, tmp_path):
    data = dataset.first(4)
    history = HistoryStore(tmp_path / "h.sqlite")
    seen = []
    result = run_sensitivity(tiny_model, data, history, bench=BENCH, on_measurement=seen.append)
    units = default_units(tiny_model.mods)
    assert seen[0] is result.baseline and seen[0].kind == "baseline"
    assert len(seen) == 1 + len(
        sensitivity_jobs(units, ("dynamic", "static", "bf16"), Plan().settings, True)
    )
    assert (
        len(result.rows) == sum(len(u.schemes) for u in units) == 16
    )  # pos_conv_embed: bf16 and static
    assert set(result.all_units) == {"dynamic", "static", "bf16"}
    assert set(result.calibration_ids).isdisjoint(result.ids)
    assert result.calibration_ids == ["utt4", "utt5"]
    row = result.row("encoder.layers.0", "dynamic")
    assert row is not None and row.loo is not None and row.all_units is not None
    assert row.loo_recovery == pytest.approx(row.all_units.delta_wer - row.loo.delta_wer)
    ref_words = result.baseline.result["ref_words"]
    for r in result.rows:
        m = r.single
        assert m.plan is not None and m.plan.entries == dict.fromkeys(r.unit.paths, r.scheme)
        # the per-utterance changes add up to the corpus ΔWER
        assert sum(c.delta for c in m.changes) == pytest.approx(m.delta_wer * ref_words / 100)
        assert m.worst(2) == [c for c in m.changes if c.delta > 0][:2]
        assert m.bytes_saved > 0
    text = json.dumps(result.to_dict())
    assert "loo_recovery" in text and "changes" in text


def test_sensitivity_resumes_after_cancel(tiny_model, dataset, tmp_path, monkeypatch):
    data = dataset.first(3)
    history = HistoryStore(tmp_path / "h.sqlite")
    settings = SensitivitySettings(schemes=("dynamic", "bf16"))
    units = default_units(tiny_model.mods)
    total = len(sensitivity_jobs(units, settings.schemes, settings.quant, True))
    calls: list[str] = []
    real = executor.paired_benchmark

    def counting(models, dataset, settings, **kwargs):
        if len(models) > 1:  # the float baseline is timed alone
            float_model, variant = models  # every plan is timed together with the float model
            assert float_model.plan is None
            calls.append(variant.plan.name)
        return real(models, dataset, settings, **kwargs)

    monkeypatch.setattr(executor, "paired_benchmark", counting)
    token = CancelToken()

    def cancel_after_five(p: Progress) -> None:
        if p.stage == "sensitivity" and p.done == 6:
            token.cancel()

    with pytest.raises(Cancelled):
        run_sensitivity(
            tiny_model, data, history, settings=settings, bench=BENCH,
            progress=cancel_after_five, cancel=token,
        )  # fmt: skip
    assert len(calls) == 5  # five plans measured (the float baseline goes through run_baseline)
    first = list(calls)
    calls.clear()
    resumed = run_sensitivity(tiny_model, data, history, settings=settings, bench=BENCH)
    assert resumed.reused == 5 and resumed.computed == total - 5 == len(calls)
    assert resumed.baseline.cached
    assert not set(first) & set(calls)  # nothing stored was measured again
    calls.clear()
    again = run_sensitivity(tiny_model, data, history, settings=settings, bench=BENCH)
    assert calls == [] and again.computed == 0 and again.reused == total
    assert [r.single.wer for r in again.rows] == [r.single.wer for r in resumed.rows]
    assert all(r.single.cached for r in again.rows)


def test_splits_are_disjoint(dataset):
    splits = make_splits(dataset, 4, None, BENCH)
    search, evaluation = set(splits.search.ids), set(splits.evaluation.ids)
    assert len(search) == 4 and len(evaluation) == 4 and not search & evaluation
    calibration = set(calibration_set(splits.union, BENCH).ids)
    assert calibration == {"utt0", "utt1"}
    assert not calibration & (search | evaluation)
    assert splits.search.ids == ["utt2", "utt4", "utt6", "utt8"]  # spread over the rest
    assert len(make_splits(dataset, 4, 2, BENCH).evaluation) == 2
    assert len(make_splits(dataset, 4, None, BENCH, calibrate=False).evaluation) == 6
    with pytest.raises(DataError, match="search"):
        make_splits(dataset, 8, None, BENCH)


@pytest.mark.parametrize("budget", [0.0, 20.0])
def test_search_respects_the_budget(tiny_model, dataset, tmp_path, budget):
    # objective size keeps the search deterministic (no timing in the decisions)
    settings = SearchSettings(
        max_wer_increase=budget, objective="size", search_n=4, engines=("x86",), max_evals=12
    )
    history = HistoryStore(tmp_path / "h.sqlite")
    seen = []
    result = run_search(tiny_model, dataset, settings, history, bench=BENCH, on_step=seen.append)
    assert seen == result.steps
    assert result.search.delta_wer <= budget
    assert result.search.model_bytes < result.search_baseline.model_bytes
    assert any(not s.within_budget for s in result.steps)  # the budget binds
    assert all(s.within_budget for s in result.steps if s.accepted)
    smallest = min(s.measurement.model_bytes for s in result.steps if s.within_budget)
    assert result.search.model_bytes == smallest
    assert result.steps[0].move == "seed: float32" and len(result.steps) <= 12 + 1
    moves = [s.move for s in result.steps]
    assert len(moves) == len(set(moves))  # a rejected move is not tried again
    assert "seed: preset tutorial (x86)" in moves  # the presets are seeds
    assert SCRIPTED_MOVE not in moves  # no Whisper searcher to script
    validate_plan(result.plan, build_tree(tiny_model.mods))
    # the bench path re-measures the plan on the search split to the same WER
    search = open_dataset(dataset.source)
    search.utterances = [u for u in search if u.id in set(result.sensitivity.ids)]
    rerun = run_experiment(tiny_model, result.plan, search, BENCH, None)
    assert rerun.result["wer"] == pytest.approx(result.search.wer)
    assert rerun.result["wer"] - result.search_baseline.wer <= budget
    splits = result.to_dict()["splits"]
    assert not set(splits["search"]) & set(splits["evaluation"])
    assert not set(splits["calibration"]) & (set(splits["search"]) | set(splits["evaluation"]))
    assert result.evaluation.n_utterances == len(splits["evaluation"]) == 4
    front = result.pareto()
    assert front and all(0 <= i < len(result.steps) for i in front)


def test_speed_search_times_candidates_against_the_kept_plan(tiny_model, dataset):
    settings = SearchSettings(max_wer_increase=20.0, search_n=4, engines=("x86",), max_evals=8)
    result = run_search(tiny_model, dataset, settings, None, bench=BENCH)
    assert result.search.delta_wer <= 20.0
    timed = [s for s in result.steps if s.time_ratio is not None]
    assert all(s.within_budget for s in timed)  # paired timings for rival plans only
    assert all(s.time_ratio < 1 for s in timed if s.accepted)
    # a move is kept only when its paired speed-up interval over the kept plan clears 1
    assert all(s.vs_kept_ci[0] > 1 for s in timed if s.accepted)


def test_paired_timing(tiny_model, dataset):
    measurer = PlanMeasurer(tiny_model, dataset.first(3), BENCH, None)
    dynamic = assignment_plan(default_units(tiny_model.mods), {"encoder.enc": "dynamic"})
    speed = measurer.duel(Plan(), dynamic, rounds=2)
    assert 0.2 < speed.ratio < 5
    assert speed.interval.low <= speed.ratio <= speed.interval.high
    assert measurer.variant(dynamic) is measurer.variant(dynamic)  # built once, kept


def test_cli_sensitivity_and_search_json(data_dir, tmp_path, capsys):
    common = ["--data", str(data_dir), "--calib-n", "2", "--warmup", "0", "--threads", "1"]
    out = tmp_path / "sens.json"
    args = ["sensitivity", SOURCE, *common, "--limit", "4", "--no-loo", "--schemes", "dynamic"]
    assert main([*args, "--json", str(out)]) == 0
    sens = json.loads(out.read_text())
    assert [r["scheme"] for r in sens["rows"]] == ["dynamic"] * 5  # pos_conv has no Linear
    assert {"delta_wer", "speedup", "encoder_speedup", "bytes_saved", "changes"} <= set(
        sens["rows"][0]["single"]
    )
    row = sens["rows"][0]
    assert row["comparison"]["paired"] and row["comparison"]["speedup_ci"] is not None
    assert row["verdict"] and sens["machine"]["key"]
    assert {"wer_ci", "load"} <= set(row["single"])
    table = capsys.readouterr().out
    assert "ΔWER [95% CI]" in table and "one word =" in table
    plan_file, out = tmp_path / "plan.json", tmp_path / "search.json"
    args = ["search", SOURCE, *common, "--search-n", "4", "--max-wer-increase", "5"]
    args += ["--objective", "size", "--engines", "x86", "-o", str(plan_file), "--json", str(out)]
    assert main(args) == 0
    report = capsys.readouterr().out
    assert "found plan" in report and "RESULT (evaluation split" in report
    assert "search split figure (used to choose, not the result" in report
    result = json.loads(out.read_text())
    assert result["headline"]["split"] == "evaluation" and result["machine"]["key"]
    assert result["settings"]["budget_rule"].startswith("ΔWER <=")
    assert all("comparison" in step for step in result["steps"])
    assert result["search"]["delta_wer"] <= 5
    assert {"plan", "evaluation", "evaluation_baseline", "steps", "pareto", "splits"} <= set(result)
    assert Plan.load(plan_file).entries == result["plan"]["entries"]
    assert main(["search", SOURCE, *common, "--max-wer-increase", "-1"]) == 2
    assert "error: the WER budget (max_wer_increase)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "Greedy search with measured acceptance" in capsys.readouterr().out


def test_search_settings_refuse_bad_values():
    with pytest.raises(PlanError, match="at least one scheme"):
        SearchSettings(max_wer_increase=1.0, schemes=("none",))
    with pytest.raises(PlanError, match="unknown scheme 'int4'"):
        SearchSettings(max_wer_increase=1.0, schemes=("dynamic", "int4"))
    with pytest.raises(DataError, match="WER budget"):
        SearchSettings(max_wer_increase=-1.0)
    with pytest.raises(DataError, match="unknown objective"):
        SearchSettings(max_wer_increase=1.0, objective="latency")
    assert SearchSettings(max_wer_increase=1.0, schemes=["bf16"]).schemes == ("bf16",)  # type: ignore[arg-type]


def test_presets_as_unit_assignments(tiny_model):
    tree = build_tree(tiny_model.mods)
    units = default_units(tiny_model.mods, tree)
    tutorial = plan_assignment(units, make_preset("tutorial", tree), tree)
    assert tutorial is not None
    assert tutorial["feature_extractor"] == tutorial["feature_projection"] == "static"
    assert tutorial["encoder.enc"] == "dynamic" and "encoder.ctc_lin" not in tutorial
    assert all(tutorial[u.name] == "dynamic" for u in units if u.name.startswith("encoder.layers"))
    # dynamic does nothing to the conv front end, so it counts as none there
    everything = plan_assignment(units, make_preset("all-dynamic", tree), tree)
    assert everything is not None and "feature_extractor" not in everything
    layer = units[3].paths[0]
    split = Plan(entries={layer: "dynamic", f"{layer}.attention": "none"})
    assert plan_assignment(units, split, tree) is None  # an entry inside a unit
    narrowed = restrict_schemes(units, ["dynamic"])
    assert plan_assignment(narrowed, make_preset("tutorial", tree), tree) is None


def test_confidence_holds_the_budget_against_the_upper_end():
    from speechquant.core.evaluation.measurement import Measurement
    from speechquant.core.evaluation.results import Comparison

    c = Comparison(0.3, [-0.2, 0.9], 0.6, 1.5, [1.2, 1.8], None, None, 1.5, False, True, None, True)
    m = Measurement("p", "candidate", 10.3, 0.3, 0.1, None, 10, 1.5, None, 5, 20, comparison=c)
    point = SearchSettings(max_wer_increase=0.5)
    strict = SearchSettings(max_wer_increase=0.5, confidence=True)
    assert point.within_budget(m) and not strict.within_budget(m)
    assert strict.budget_figure(m) == 0.9 and "upper end" in strict.budget_rule
    assert m.objective("rtf") == pytest.approx(1 / 1.5) and m.objective("size") == 10


@pytest.mark.slow
def test_whisper_search_tries_scripted_decoder_steps_last(demo_whisper):
    head = "whisper.model.decoder.embed_tokens"
    units = units_from_paths(demo_whisper.mods, [head])
    settings = SearchSettings(
        max_wer_increase=100.0,
        schemes=("dynamic",),
        search_n=3,
        eval_n=2,
        engines=("x86",),
        max_evals=3,
    )
    dataset = open_dataset("demo")
    result = run_search(demo_whisper, dataset, settings, None, bench=BENCH, units=units)
    last = result.steps[-1]
    assert last.move == SCRIPTED_MOVE and last.to_dict()["decoder_step"] == "scripted"
    kept = [s for s in result.steps[:-1] if s.accepted][-1]
    assert last.assignment == kept.assignment  # the kept plan, its steps scripted
    assert last.measurement.plan.settings.decoder_step == "scripted"
    # measured for real, paired against the plan kept before it, kept only when it clears 1
    assert last.vs_kept_ci is not None and last.accepted == (last.vs_kept_ci[0] > 1)
    found = result.plan.settings.decoder_step
    assert found == ("scripted" if last.accepted else "native")
    assert [s.move for s in result.steps].count(SCRIPTED_MOVE) == 1
