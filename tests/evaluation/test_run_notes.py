"""A run's user-given name, tags and note: stored, listed, filtered, and older histories upgraded."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import pytest

from speechquant.core.errors import HistoryError, SpeechquantWarning
from speechquant.core.evaluation.history import SCHEMA_VERSION, HistoryStore, RunNotes
from speechquant.core.evaluation.run_notes import parse_tags

from .test_history import PLAN, bench_result

# The schema speechquant wrote before runs had names, tags and notes (user_version 1).
V1_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, started_ts REAL NOT NULL,
    recorded_at TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL, plan_name TEXT,
    plan_summary TEXT NOT NULL, engine TEXT, threads INTEGER, n_utterances INTEGER,
    audio_seconds REAL, wer REAL, rtf REAL, rtf_encoder REAL, model_bytes INTEGER,
    file_bytes INTEGER, peak_rss_bytes INTEGER, group_id TEXT, cache_key TEXT,
    settings_json TEXT, result_json TEXT NOT NULL
);
CREATE INDEX runs_started ON runs (started_ts DESC, id DESC);
CREATE TABLE utterances (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, idx INTEGER NOT NULL,
    utt_id TEXT NOT NULL, ref TEXT, hyp TEXT, seconds REAL, audio_seconds REAL, extra_json TEXT,
    PRIMARY KEY (run_id, idx)
);
"""


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "history.sqlite")


def test_name_tags_and_note_round_trip(store: HistoryStore) -> None:
    run = store.add_run(bench_result(plan=PLAN), kind="bench")
    other = store.add_run(bench_result(), kind="baseline")
    assert store.notes(run) == RunNotes()
    notes = store.annotate(run, name=" fast one ", tags=["keep", "paper", "keep"], note="x\ny")
    assert notes == RunNotes("fast one", ("keep", "paper"), "x\ny")
    listed = {r.id: r for r in store.list_runs()}
    assert listed[run].name == "fast one" and listed[run].tags == ("keep", "paper")
    assert listed[run].note == "x\ny" and listed[other].tags == () and listed[other].name is None
    meta = store.get_run(run)["history"]
    assert (meta["name"], meta["tags"], meta["note"]) == ("fast one", ["keep", "paper"], "x\ny")
    typed = store.load_run(run).meta
    assert typed.tags == ("keep", "paper") and typed.to_json()["tags"] == ["keep", "paper"]
    json.dumps(listed[run].as_dict())  # the CLI's --json


def test_none_keeps_and_empty_clears(store: HistoryStore) -> None:
    run = store.add_run(bench_result())
    store.annotate(run, name="a", tags=["t"], note="n")
    assert store.annotate(run, note="m") == RunNotes("a", ("t",), "m")
    assert store.annotate(run, name="", tags=[], note="") == RunNotes()


def test_tag_and_untag(store: HistoryStore) -> None:
    run = store.add_run(bench_result())
    assert store.tag(run, "b", "a").tags == ("b", "a")
    assert store.tag(run, "a", "c").tags == ("b", "a", "c")
    assert store.untag(run, "a").tags == ("b", "c")
    with pytest.raises(HistoryError, match=r"run \d+ has no tag 'zz' \(its tags: b, c\)"):
        store.untag(run, "zz")
    assert store.notes(run).tags == ("b", "c")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "two\nlines"}, "a run name is one line"),
        ({"name": "x" * 81}, "keep it to 80"),
        ({"tags": ["a,b"]}, "holds a comma"),
        ({"tags": ["  "]}, "a tag cannot be empty"),
        ({"tags": "keep"}, "not one string"),
        ({"note": "n" * 4001}, "keep it to 4000"),
    ],
)
def test_bad_notes_are_refused_and_nothing_changes(store: HistoryStore, change, message) -> None:
    run = store.add_run(bench_result())
    store.annotate(run, name="kept", tags=["kept"])
    with pytest.raises(HistoryError, match=message) as info:
        store.annotate(run, **change)
    assert "\n" not in str(info.value)
    assert store.notes(run) == RunNotes("kept", ("kept",), None)


def test_unknown_run_is_named(store: HistoryStore) -> None:
    for call in (lambda: store.annotate(99, name="x"), lambda: store.tag(99, "x")):
        with pytest.raises(HistoryError, match="run 99 is not in the history"):
            call()


def test_list_runs_by_tag_honours_the_limit(store: HistoryStore) -> None:
    ids = [
        store.add_run(bench_result(started_at=f"2025-01-0{i + 1}T10:00:00+00:00")) for i in range(4)
    ]
    for run in ids[:3]:
        store.tag(run, "keep")
    store.tag(ids[3], "other")
    assert [r.id for r in store.list_runs(tag="keep")] == ids[2::-1]
    assert [r.id for r in store.list_runs(tag="keep", limit=2)] == [ids[2], ids[1]]
    assert store.list_runs(tag="nothing") == []


def test_parse_tags_from_typed_text() -> None:
    assert parse_tags(" fast,  keep ,, fast ") == ("fast", "keep")
    assert parse_tags("") == ()


def test_a_version_1_history_is_upgraded_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.execute(
        "INSERT INTO runs (started_at, started_ts, recorded_at, kind, source, plan_name, "
        "plan_summary, wer, result_json) VALUES ('2025-01-01T00:00:00+00:00', 1735689600, "
        "'2025-01-01T00:00:00+00:00', 'bench', 'old-model', 'tutorial', 'dynamic×1', 9.5, ?)",
        (json.dumps(bench_result(source="old-model", plan=PLAN, n=0)),),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = HistoryStore(path)
    (old,) = store.list_runs()
    assert old.source == "old-model" and old.wer == 9.5 and old.tags == () and old.name is None
    assert store.get_run(old.id)["history"]["tags"] == []
    store.annotate(old.id, name="from before", tags=["legacy"])
    new = store.add_run(bench_result())
    again = HistoryStore(path)  # opening the upgraded file again changes nothing
    assert {r.id: r.name for r in again.list_runs()} == {old.id: "from before", new: None}
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2


def test_damaged_tags_are_named_and_read_as_none(store: HistoryStore) -> None:
    run = store.add_run(bench_result())
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET tags_json = '{oops' WHERE id = ?", (run,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (listed,) = store.list_runs()
    assert listed.tags == ()
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, SpeechquantWarning))
    assert f"history run {run}: its tags are damaged" in said
    assert store.tag(run, "fixed").tags == ("fixed",)
