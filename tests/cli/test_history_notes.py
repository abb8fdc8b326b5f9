"""``speechquant history``: names, tags and notes set, shown and filtered on the command line."""

from __future__ import annotations

import json

import pytest

from speechquant.core.cli.main import main
from speechquant.core.evaluation.history import HistoryStore

from ..evaluation.test_history import PLAN, bench_result


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHQUANT_DATA", str(tmp_path / "data"))
    store = HistoryStore()
    base = store.add_run(bench_result(), kind="baseline")
    plan = store.add_run(bench_result(plan=PLAN, wer=13.0), kind="bench")
    return store, base, plan


def test_name_tag_note_and_filter(runs, capsys):
    store, base, plan = runs
    assert main(["history", "--name", str(plan), "int8 encoder"]) == 0
    assert main(["history", "--tag", str(plan), "keep"]) == 0
    assert main(["history", "--tag", str(base), "reference"]) == 0
    assert main(["history", "--note", str(plan), "before the engine change"]) == 0
    said = capsys.readouterr().err
    assert f"run {plan}: name int8 encoder, tags keep, note before the engine change" in said
    assert main(["history"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "name" in table[0] and "tags" in table[0]
    line = next(row for row in table if row.lstrip().startswith(str(plan)))
    assert "int8 encoder" in line and "keep" in line
    assert main(["history", "--tagged", "keep", "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert shown["id"] == plan and shown["tags"] == ["keep"]
    assert shown["name"] == "int8 encoder" and shown["note"] == "before the engine change"
    assert main(["history", "--show", str(plan)]) == 0
    assert json.loads(capsys.readouterr().out)["history"]["note"] == "before the engine change"
    assert main(["history", "--untag", str(plan), "keep"]) == 0
    assert main(["history", "--name", str(plan), ""]) == 0
    assert store.notes(plan).tags == () and store.notes(plan).name is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "abc", "x"], "--name takes a run id first, got 'abc'"),
        (["--untag", "{plan}", "never"], "has no tag 'never'"),
        (["--tag", "999", "x"], "run 999 is not in the history"),
        (["--tag", "{plan}", "a,b"], "holds a comma"),
    ],
)
def test_bad_notes_give_one_line(runs, capsys, argv, message):
    _, _, plan = runs
    assert main(["history", *[a.format(plan=plan) for a in argv]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: ")
