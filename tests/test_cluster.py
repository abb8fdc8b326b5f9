"""Sensitivity, compare and search on a local Ray cluster give the answers of one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from speechquant.core.cluster.settings import (
    ClusterError,
    ClusterSettings,
    shard_ids,
    timing_ids,
)
from speechquant.core.data.audio import load_audio
from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import Cancelled
from speechquant.core.evaluation.bench import BenchSettings, row_figures
from speechquant.core.evaluation.experiment import run_compare
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.results import BenchResult, UtteranceRow, compare
from speechquant.core.progress import CancelToken, Progress
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree
from speechquant.core.search.sensitivity import SensitivitySettings, run_sensitivity
from speechquant.core.sources import open_model

from .helpers import fixed_waves

SOURCE = "replica:wav2vec2-tiny"
LAYER0 = "encoder.wav2vec2.model.encoder.layers.0"
BENCH = BenchSettings(warmup=0, threads=1, calib_n=2, encoder_rtf=False)
SETTINGS = SensitivitySettings(schemes=("dynamic", "static"), leave_one_out=True)
UNITS = ("feature_projection", "encoder.layers.0", "encoder.ctc_lin")
"""Units under both schemes, for 12 measurements per analysis."""


def test_addresses_are_checked():
    assert ClusterSettings("local:2").local_workers == 2
    assert ClusterSettings("auto").local_workers is None
    assert not ClusterSettings("ray://head.example:10001").is_local
    assert ClusterSettings("auto").timing_n == 20
    for bad in ("local:0", "ray://nohost", "localhost", "local:x"):
        with pytest.raises(ClusterError, match="local"):
            ClusterSettings(bad)


def test_shards_and_timing_ids_are_fixed_by_the_ids():
    ids = [f"u{i:02d}" for i in range(10)]
    shuffled = ids[::-1]
    assert shard_ids(shuffled, 4) == [ids[0:4], ids[4:8], ids[8:10]]
    assert timing_ids(shuffled, 3) == ["u00", "u03", "u06"]
    assert timing_ids(ids, 20) == ids


def _row(i: int, seconds: float, timed: bool = True) -> UtteranceRow:
    return UtteranceRow(f"u{i}", "a b", "a b", seconds, 2.0, chunks=None, timed=timed)


def _result(rows: list[UtteranceRow], session: str = "s") -> BenchResult:
    return BenchResult(
        source="m", plan=None, scheme_summary={}, engine="x86", threads=1,
        **row_figures(rows, BenchSettings(encoder_rtf=False)),
        warmup=0, repeats=1, model_bytes=10, file_bytes=10, peak_rss_bytes=1, skipped=[],
        utterances=rows, torch_version="", speechbrain_version="", started_at="",
        timing_session=session,
    )  # fmt: skip


def test_untimed_rows_carry_no_time_into_rtf_or_speedups():
    row = _row(0, 0.0, timed=False)
    assert row.to_json()["timed"] is False and "timed" not in _row(1, 1.0).to_json()
    assert UtteranceRow.from_json(row.to_json()) == row
    assert UtteranceRow.from_json({"id": "old", "seconds": 1.0}).timed  # older results
    base = _result([_row(0, 1.0), _row(1, 0.0, timed=False), _row(2, 3.0)])
    plan = _result([_row(0, 0.5), _row(1, 0.0, timed=False), _row(2, 1.5)])
    assert base.rtf == pytest.approx(4.0 / 4.0) and base.audio_seconds == 6.0
    assert base.n_utterances == 3
    comparison = compare(base, plan)
    assert comparison.paired and comparison.speedup == pytest.approx(2.0)
    untimed = _result([_row(0, 0.0, timed=False)])
    assert compare(untimed, untimed).speedup is None
    back = BenchResult.from_json(json.loads(json.dumps(base.to_json())))
    assert back.cluster is None and "cluster" not in base.to_json()
    assert [u.timed for u in back.utterances] == [True, False, True]


def test_merge_takes_texts_from_the_shards_and_times_from_the_session_only():
    from speechquant.core.cluster.merge import ShardRows, merge_run
    from speechquant.core.data.datasets import Dataset, Utterance
    from speechquant.core.evaluation.results import ClusterInfo

    session = _result([_row(1, 0.7)])  # the timing node timed u1 only, and heard "a b"
    shard = ShardRows("float")
    shard.add(
        {
            "rows": [
                {"id": f"u{i}", "ref": "a b", "hyp": hyp, "audio_seconds": 2.0, "chunks": None}
                for i, hyp in enumerate(["a b", "a c", "a"])
            ],
            "skipped": [],
            "failed": [],
            "node": "n1",
        }
    )
    data = Dataset("d", "folder", [Utterance(f"u{i}", Path(f"u{i}.wav"), "a b") for i in range(3)])
    info = ClusterInfo("local:2", 2, 1, 8, 1, [], "driver", "host", 0)
    bench = BenchSettings(encoder_rtf=False, normalizer="basic")
    merged = merge_run(session, shard, data.ids, [], bench, info, "t")
    assert [u.hyp for u in merged.utterances] == ["a b", "a c", "a"]
    assert [u.timed for u in merged.utterances] == [False, True, False]
    assert [u.seconds for u in merged.utterances] == [0.0, 0.7, 0.0]
    assert merged.rtf == pytest.approx(0.7 / 2.0) and merged.audio_seconds == 6.0
    assert merged.wer == pytest.approx(100 * 2 / 6) and merged.wer_ci is not None
    assert merged.cluster.n_timed == 1 and merged.cluster.nodes == ["n1"]
    assert "differ from the workers' on 1 timed utterance(s) (u1)" in merged.cluster.warnings[0]
    assert merged.timing_session == session.timing_session


def test_cluster_companions_without_cluster_are_one_line(capsys):
    from speechquant.core.cli.main import main

    assert main(["compare", SOURCE, "--data", "demo", "--timing-n", "5"]) == 2
    assert capsys.readouterr().err == (
        "error: --timing-n is for cluster runs; add --cluster ADDRESS or drop it\n"
    )


def _tiny_data(root: Path, n: int) -> Path:
    for i, wave in enumerate(fixed_waves(n, seconds=0.5)):
        sf.write(root / f"u{i}.wav", wave.numpy(), 16000)
        (root / f"u{i}.txt").write_text("a")
    return root


def test_ray_is_not_imported_without_cluster(tmp_path):
    data = _tiny_data(tmp_path, 2)
    code = (
        "import sys\n"
        "from speechquant.core.cli.main import main\n"
        f"code = main(['sensitivity', '{SOURCE}', '--data', '{data}', '--schemes', 'dynamic',"
        f" '--no-loo', '--no-history', '--warmup', '0', '--unit', '{LAYER0}'])\n"
        "assert code == 0, code\n"
        f"code = main(['compare', '{SOURCE}', '--data', '{data}', '--preset', 'all-dynamic',"
        " '--no-history', '--warmup', '0', '--no-encoder-rtf'])\n"
        "assert code == 0, code\n"
        "print('ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'speechquant[cluster]')")


@pytest.fixture(scope="module")
def local_ray():
    """A 2-CPU Ray cluster on this machine (no dashboard, a small object store) with a ``timer``
    resource for a timing node; shut down after the module, no process left."""
    for attempt in range(3):  # Ray gives its raylet 30 s to start, short on a loaded machine
        try:
            ray.init(
                num_cpus=2,
                resources={"timer": 1},
                include_dashboard=False,
                object_store_memory=80 * 1024 * 1024,
                log_to_driver=False,
                logging_level="ERROR",
                runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}},
            )
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    session_dir = Path(ray._private.worker._global_node.get_session_dir_path()).name
    yield
    ray.shutdown()
    left = subprocess.run(["pgrep", "-f", session_dir], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"Ray processes left behind: {left.stdout}"


@pytest.fixture(scope="module")
def model():
    return open_model(SOURCE)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, model):
    """1 s utterances whose references are the float model's own transcripts."""
    root = tmp_path_factory.mktemp("cluster-data")
    for i, wave in enumerate(fixed_waves(9, seconds=1.0, seed=3)):
        sf.write(root / f"utt{i}.wav", wave.numpy(), 16000)
        (root / f"utt{i}.txt").write_text(model.transcribe(load_audio(root / f"utt{i}.wav", 16000)))
    return root


@pytest.fixture(scope="module")
def units(model):
    from speechquant.core.search.units import default_units

    return [u for u in default_units(model.mods) if u.name in UNITS]


@pytest.fixture(scope="module")
def serial(model, data_dir, units):
    """The sensitivity analysis in this process, with no history."""
    data = open_dataset(data_dir)
    return run_sensitivity(model, data.first(6), None, units=units, settings=SETTINGS, bench=BENCH)


def cluster(address: str = "local:2", **kwargs):
    from speechquant.core.cluster.session import open_cluster

    return open_cluster(ClusterSettings(address, shard_size=2, timing_n=2, **kwargs))


def _rows(result):
    rows = [(r.unit.name, r.scheme, r.single.wer, r.single.delta_wer) for r in result.rows]
    rows += [(r.unit.name, r.scheme, r.loo.wer) for r in result.rows if r.loo is not None]
    return rows


def _hyps(result):
    measurements = [result.baseline] + [r.single for r in result.rows]
    measurements += [r.loo for r in result.rows if r.loo is not None]
    return [[(u.id, u.hyp) for u in m.bench.utterances] for m in measurements]


def test_sensitivity_on_two_workers_matches_one_process(local_ray, model, data_dir, serial, units):
    data = open_dataset(data_dir).first(6)
    seen: list[Progress] = []
    with cluster() as session:
        executor = session.executor(model, open_model)
        result = run_sensitivity(
            model, data, None, units=units, settings=SETTINGS, bench=BENCH, executor=executor,
            progress=seen.append,
        )  # fmt: skip
        assert len(executor.workers()) == 2
    assert _rows(result) == _rows(serial)
    assert _hyps(result) == _hyps(serial)
    assert result.calibration_ids == serial.calibration_ids
    first = result.rows[0].single.bench
    assert first.cluster is not None and first.machine is not None
    assert first.cluster.timing_node == "driver" and first.cluster.n_timed == 2
    assert first.cluster.shards == 3 and first.cluster.workers == 2
    timed = [u for u in first.utterances if u.timed]
    assert [u.id for u in timed] == timing_ids(data.ids, 2)
    assert all(u.seconds == 0.0 and u.encoder_seconds is None for u in first.utterances[1:3])
    assert result.rows[0].single.comparison.paired  # speed-up from the driver's session
    shards = [p for p in seen if p.stage == "cluster shards"]
    assert shards[-1].done == shards[-1].total == 3 * (1 + result.computed)


def test_a_killed_worker_is_replaced_and_its_shard_retried(
    local_ray, model, data_dir, serial, units
):
    data = open_dataset(data_dir).first(6)
    with cluster() as session:
        executor = session.executor(model, open_model)
        killed: list[int] = []

        def kill_once(p: Progress) -> None:
            if p.stage == "cluster shards" and p.done >= 4 and not killed:
                killed.append(p.done)
                ray.kill(executor.workers()[0])

        result = run_sensitivity(
            model, data, None, units=units, settings=SETTINGS, bench=BENCH, executor=executor,
            progress=kill_once,
        )  # fmt: skip
        assert killed and executor.replaced >= 1
    assert _rows(result) == _rows(serial)
    assert _hyps(result) == _hyps(serial)


def test_cancel_stops_the_cluster_and_the_history_resumes(
    local_ray, model, data_dir, serial, units, tmp_path
):
    data = open_dataset(data_dir).first(6)
    history = HistoryStore(tmp_path / "h.sqlite")
    token = CancelToken()

    def cancel_midway(p: Progress) -> None:
        if p.stage == "cluster shards" and p.done >= 10:
            token.cancel()

    with cluster() as session:
        executor = session.executor(model, open_model)
        with pytest.raises(Cancelled):
            run_sensitivity(
                model, data, history, units=units, settings=SETTINGS, bench=BENCH,
                executor=executor, progress=cancel_midway, cancel=token,
            )  # fmt: skip
        assert executor.pool.stopped
        stored = history.list_runs()
        assert 0 < len(stored) < len(_hyps(serial))
        for summary in stored:  # no partial runs: every stored run covers all utterances
            run = history.get_run(summary.id)
            assert [u["id"] for u in run["utterances"]] == data.ids
        resumed = run_sensitivity(
            model, data, history, units=units, settings=SETTINGS, bench=BENCH,
            executor=session.executor(model, open_model),
        )  # fmt: skip
    # the baseline is counted apart; plans with the same entries as another are reused too
    assert resumed.reused == len(stored) - 1 + serial.reused
    assert _rows(resumed) == _rows(serial)
    assert _hyps(resumed) == _hyps(serial)


def test_compare_on_two_workers_matches_one_process(local_ray, model, data_dir):
    data = open_dataset(data_dir)
    tree = build_tree(model.mods)
    plans = [make_preset("all-dynamic", tree), make_preset("tutorial", tree)]
    bench = BenchSettings(warmup=0, threads=1, calib_n=2, encoder_rtf=True, limit=6)
    local = run_compare(model, plans, data, bench, None)
    with cluster(timing_node="timer", ship_limit=0) as session:  # audio and model read by path
        spread = run_compare(
            model, plans, data, bench, None, executor=session.executor(model, open_model)
        )
    for one, many in zip(local, spread, strict=True):
        assert many.bench.wer == one.bench.wer and many.bench.wer_ci == one.bench.wer_ci
        assert many.calibration_ids == one.calibration_ids
        assert [(u.id, u.hyp) for u in many.bench.utterances] == [
            (u.id, u.hyp) for u in one.bench.utterances
        ]
        assert many.bench.cluster.timing_node == "timer" and many.bench.cluster.n_timed == 2
        assert many.bench.timing_session == spread[0].bench.timing_session
    for many in spread[1:]:
        c = many.bench.comparison
        assert c.paired and c.speedup is not None and c.speedup_encoder is not None


def test_a_worker_that_cannot_read_the_audio_names_node_and_path(
    local_ray, model, data_dir, tmp_path
):
    for name in ("a", "b"):
        (tmp_path / f"{name}.wav").write_bytes((data_dir / "utt0.wav").read_bytes())
        (tmp_path / f"{name}.txt").write_text("x")
    data = open_dataset(tmp_path)
    (tmp_path / "b.wav").unlink()  # gone after the driver listed it
    bench = BenchSettings(warmup=0, threads=1, encoder_rtf=False)
    with (
        cluster(ship_limit=0) as session,
        pytest.raises(ClusterError, match=r"node .* cannot read .*b\.wav"),
    ):
        run_compare(model, [], data, bench, None, executor=session.executor(model, open_model))


def test_a_missing_timing_node_is_one_clear_line(local_ray):
    with (
        pytest.raises(
            ClusterError, match="no node of the cluster offers the Ray resource 'gpu-box'"
        ),
        cluster(timing_node="gpu-box"),
    ):
        pass


def test_cli_sensitivity_with_cluster_matches_without(local_ray, data_dir, tmp_path, capsys):
    from speechquant.core.cli.main import main

    args = [
        "sensitivity", SOURCE, "--data", str(data_dir), "--limit", "4", "--schemes", "dynamic",
        "--no-loo", "--no-history", "--warmup", "0", "--threads", "1", "--unit", LAYER0,
    ]  # fmt: skip
    assert main([*args, "--json", str(tmp_path / "one.json")]) == 0
    cluster_args = ["--cluster", "local:2", "--shard-size", "1", "--timing-n", "1"]
    assert main([*args, *cluster_args, "--json", str(tmp_path / "many.json")]) == 0
    err = capsys.readouterr().err
    assert "transcribed by 2 cluster workers" in err and "over 1 of 4 utterances" in err
    one, many = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "many"))
    assert [r["single"]["wer"] for r in many["rows"]] == [r["single"]["wer"] for r in one["rows"]]
    assert many["rows"][0]["single"]["changes"] == one["rows"][0]["single"]["changes"]
    assert main(["compare", SOURCE, "--data", str(data_dir), "--cluster", "local:0"]) == 2
    assert capsys.readouterr().err == "error: local:N needs at least one worker (N >= 1)\n"


def test_search_on_two_workers_tries_the_same_plans(local_ray, model, data_dir):
    from speechquant.core.search.plan_search import SearchSettings, run_search
    from speechquant.core.search.units import default_units

    data = open_dataset(data_dir)
    units = [u for u in default_units(model.mods) if u.name.startswith("encoder.layers")]
    settings = SearchSettings(
        max_wer_increase=100.0, objective="size", schemes=("dynamic",), engines=("x86",),
        search_n=3, eval_n=2, max_evals=4,
    )  # fmt: skip
    bench = BenchSettings(warmup=0, threads=1, calib_n=2, encoder_rtf=False)
    local = run_search(model, data, settings, None, bench=bench, units=units)
    with cluster() as session:
        spread = run_search(
            model, data, settings, None, bench=bench, units=units,
            executor=session.executor(model, open_model),
        )  # fmt: skip
    assert [(s.move, s.measurement.wer) for s in spread.steps] == [
        (s.move, s.measurement.wer) for s in local.steps
    ]
    assert spread.evaluation.wer == local.evaluation.wer
    assert spread.eval_ids == local.eval_ids
