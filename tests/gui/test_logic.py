"""The Qt-free helpers behind the views: baselines, Pareto front, ETA, word marking."""

from __future__ import annotations

from speechquant.core.evaluation.history import RunSummary
from speechquant.core.evaluation.metrics import WordOp
from speechquant.core.evaluation.pareto import pareto_front
from speechquant.core.evaluation.runs import find_baseline, run_rows
from speechquant.gui.progress_model import OverallProgress
from speechquant.gui.run_panel import format_eta
from speechquant.gui.utterances_view import mark_words


def summary(run_id: int, plan: str | None, group: str | None = None, **kw) -> RunSummary:
    values = dict(
        id=run_id,
        started_at="2026-01-01T00:00:00+00:00",
        kind="baseline" if plan is None else "bench",
        source="m",
        plan_name=plan,
        plan_summary="float" if plan is None else "dynamic×1",
        engine="x86",
        threads=1,
        wer=10.0,
        rtf=0.5,
        rtf_encoder=0.2,
        model_bytes=1000,
        file_bytes=1000,
        n_utterances=3,
        group_id=group,
    )
    values.update(kw)
    return RunSummary(**values)


def test_pareto_front_keeps_the_non_dominated_points():
    points = [(0.5, 10.0), (0.2, 12.0), (0.3, 9.0), (0.6, 9.0), (0.1, 30.0), (0.2, 12.0)]
    assert pareto_front(points) == [4, 1, 2]
    assert pareto_front([]) == []


def test_a_run_finds_its_group_baseline_else_a_comparable_one():
    base_a = summary(1, None, group="a")
    base_b = summary(2, None, group="b", n_utterances=5)
    grouped = summary(3, "p", group="a")
    loose = summary(4, "q", n_utterances=5)
    other_source = summary(5, "r", source="other")
    runs = [base_a, base_b, grouped, loose, other_source]
    assert find_baseline(grouped, runs) is base_a
    assert find_baseline(loose, runs) is base_b
    assert find_baseline(other_source, runs) is None
    assert find_baseline(base_a, runs) is None
    rows = {row.run.id: row for row in run_rows(runs)}
    pair = [base_a, summary(6, "p", group="a", rtf=0.25, model_bytes=250)]
    stale = run_rows(pair)[1]  # half the baseline's stored RTF, but not timed with it
    assert stale.speedup is None and stale.size_ratio == 4.0 and stale.delta_wer == 0.0
    stored = {6: {"paired": True, "speedup": 1.7, "speedup_ci": [1.5, 1.9]}}
    faster = run_rows(pair, stored.get)[1]
    assert faster.speedup == 1.7 and faster.speedup_ci == (1.5, 1.9)
    unpaired = run_rows(pair, {6: {"paired": False, "speedup": 1.7}}.get)[1]
    assert unpaired.speedup is None and unpaired.speedup_ci is None
    assert rows[1].speedup == 1.0 and rows[1].delta_wer == 0.0
    assert rows[5].speedup is None and rows[5].delta_wer is None  # nothing to compare with


def test_without_a_group_the_baseline_must_share_the_data():
    on_dev = summary(1, None, data="/corpus/dev")
    on_test = summary(2, None, data="/corpus/test")
    legacy = summary(3, None)  # stored before runs recorded their DATA
    dev_run = summary(4, "p", data="/corpus/dev")
    other_threads = summary(5, "p", data="/corpus/test", threads=4)
    old_run = summary(6, "p")
    grouped = summary(7, "p", group="g", data="/corpus/dev")
    in_group = summary(8, None, group="g", data="/corpus/test")  # the group decides
    runs = [on_dev, on_test, legacy, dev_run, other_threads, old_run, grouped, in_group]
    assert find_baseline(dev_run, runs) is on_dev  # not the newer baseline on other data
    assert find_baseline(other_threads, runs) is None
    assert find_baseline(old_run, runs) is legacy
    assert find_baseline(grouped, runs) is in_group


def test_overall_progress_spans_units_with_the_step_underneath():
    progress = OverallProgress(now=0.0)
    first = progress.update(0, 4, "sensitivity", now=0.0)
    assert first.fraction == 0.0 and first.overall == "sensitivity 0 / 4" and first.step == ""
    inner = progress.update(1, 2, "benchmarking all-static", now=10.0)  # half of unit 1
    assert inner.fraction == 0.125 and inner.overall == "sensitivity 0 / 4"
    assert inner.step == "benchmarking all-static 1 / 2"
    assert inner.eta_seconds == 70.0  # 12.5 % in 10 s: 87.5 % in 70 s
    later = progress.update(2, 4, "sensitivity", now=40.0)
    assert later.fraction == 0.5 and later.eta_seconds == 40.0
    assert progress.update(4, 4, "sensitivity", now=80.0).eta_seconds == 0.0


def test_progress_of_a_single_step_job_and_a_new_stage():
    progress = OverallProgress(now=0.0)
    assert progress.update(0, 10, "bench", now=100.0).eta_seconds is None
    view = progress.update(2, 10, "bench", now=104.0)
    assert view.overall == "bench 2 / 10" and view.step == "" and view.eta_seconds == 16.0
    assert progress.update(0, 4, "calibrating", now=105.0).eta_seconds is None  # restarts
    assert progress.update(1, 4, "calibrating", now=106.0).eta_seconds == 3.0
    assert progress.update(3, 0, "loading", now=107.0).fraction is None  # unknown total
    assert format_eta(75.4) == "ETA 1:15" and format_eta(None) == ""


def test_mark_words_highlights_each_kind_of_error():
    ops = [
        WordOp("correct", "the", "the"),
        WordOp("substitution", "cat", "hat"),
        WordOp("deletion", "sat", None),
        WordOp("insertion", None, "down<"),
    ]
    html, errors = mark_words(ops)
    assert errors == 3
    assert html.startswith("the ")
    assert "hat</span>" in html and "[cat]" in html
    assert "line-through" in html and "sat</span>" in html
    assert "down&lt;</span>" in html
    assert mark_words([])[1] == 0
