"""The one label both front ends give a stored run: its id and the user's name, else its plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechquant.core.cli.runs_table import format_runs_table
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.run_notes import note_preview
from speechquant.core.evaluation.runs import run_label, run_rows

from .test_history import PLAN, bench_result


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "history.sqlite")


def test_every_form_of_a_run_gets_the_same_label(store: HistoryStore) -> None:
    base = store.add_run(bench_result(), kind="baseline", group_id="g")
    plan = store.add_run(bench_result(plan=PLAN), kind="compare", group_id="g")
    preset = store.add_run(
        bench_result(plan={"preset": "all-dynamic", "rules": []}), kind="compare", group_id="g"
    )

    def forms(run_id: int) -> set[str]:
        summary = next(r for r in store.list_runs() if r.id == run_id)
        row = next(r for r in run_rows(store.list_runs()) if r.run.id == run_id)
        return {
            run_label(summary),
            run_label(row),
            row.label,
            run_label(summary.as_dict()),
            run_label(store.get_run(run_id)),
        }

    assert forms(base) == {f"#{base} float32"}
    assert forms(plan) == {f"#{plan} tutorial"}
    assert forms(preset) == {f"#{preset} all-dynamic"}
    store.annotate(plan, name="int8 encoder")
    store.annotate(base, name="reference")
    assert forms(plan) == {f"#{plan} int8 encoder"}
    assert forms(base) == {f"#{base} reference"}
    store.annotate(plan, name="")
    assert forms(plan) == {f"#{plan} tutorial"}


def test_a_run_without_an_id_is_refused() -> None:
    with pytest.raises(TypeError, match="no history id"):
        run_label(bench_result(plan=PLAN))
    with pytest.raises(TypeError, match="not int"):
        run_label(3)  # type: ignore[arg-type]


def test_the_runs_table_names_each_baseline_by_its_label(store: HistoryStore) -> None:
    base = store.add_run(bench_result(wer=10.0), kind="baseline", group_id="g")
    store.add_run(bench_result(plan=PLAN, wer=12.0), kind="compare", group_id="g")
    store.annotate(base, name="reference run")
    lines = format_runs_table(store.list_runs()).splitlines()
    plan_line = next(line for line in lines[1:] if "tutorial" in line)
    assert f"#{base} reference run" in plan_line


def test_note_preview_keeps_the_first_line_and_marks_a_cut() -> None:
    assert note_preview(None) == "" and note_preview("   ") == ""
    assert note_preview("short note") == "short note"
    assert note_preview("first line\nsecond line") == "first line…"
    long = "word " * 30
    preview = note_preview(long, width=20)
    assert len(preview) <= 20 and preview.endswith("…") and preview.startswith("word word")
