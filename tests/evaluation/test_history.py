"""The run history store: round trip, listing, baseline cache, crash safety, refusals, threads."""

from __future__ import annotations

import copy
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from speechquant.core.cli.runs_table import format_runs_table
from speechquant.core.errors import HistoryError
from speechquant.core.evaluation.history import (
    HISTORY_FILENAME,
    SCHEMA_VERSION,
    HistoryStore,
    RunSummary,
    make_cache_key,
    new_group_id,
)


def bench_result(
    *, source: str = "demo:whisper-tiny-en", started_at: str = "2025-01-02T10:00:00+00:00",
    plan: dict[str, Any] | None = None, wer: float = 12.5, n: int = 3,
) -> dict[str, Any]:  # fmt: skip
    """One ``bench --json`` object as interface.md describes it."""
    utterances = [
        {"id": f"utt-{i}", "ref": f"hello world {i}", "hyp": f"hello word {i}", "seconds": 0.25 + i,
         "audio_seconds": 2.0 + i}
        for i in range(n)
    ]  # fmt: skip
    return {
        "source": source,
        "plan": plan,
        "scheme_summary": {} if plan is None else {"dynamic_int8": 24, "bf16": 2},
        "engine": "x86",
        "threads": 4,
        "n_utterances": n,
        "audio_seconds": sum(u["audio_seconds"] for u in utterances),
        "wer": wer,
        "insertions": 0,
        "deletions": 1,
        "substitutions": 2,
        "ref_words": 24,
        "rtf": 0.125,
        "rtf_encoder": 0.05,
        "warmup": 1,
        "repeats": 3,
        "model_bytes": 151_000_000,
        "file_bytes": 151_500_000,
        "peak_rss_bytes": 900_000_000,
        "skipped": [{"id": "utt-x", "reason": "empty reference"}],
        "utterances": utterances,
        "torch_version": "2.11.0",
        "speechbrain_version": "1.0.3",
        "started_at": started_at,
    }


PLAN = {"name": "tutorial", "rules": [{"path": "encoder", "scheme": "dynamic_int8"}]}


def strip_meta(stored: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    stored = dict(stored)
    return stored, stored.pop("history")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(tmp_path / "history.sqlite") as opened:
        yield opened


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_default_path_honours_speechquant_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEECHQUANT_DATA", str(tmp_path / "data"))
    with HistoryStore() as opened:
        assert opened.path == tmp_path / "data" / HISTORY_FILENAME
    assert opened.path.is_file()
    conn = sqlite3.connect(opened.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_round_trip_with_utterances_and_settings(store: HistoryStore) -> None:
    result = bench_result(plan=PLAN)
    result["utterances"][1]["note"] = "extra keys survive"
    original = copy.deepcopy(result)
    settings = {"data": "demo", "limit": 3, "calib": None}
    run_id = store.add_run(result, kind="bench", settings=settings, cache_key="k1")
    assert result == original  # the caller's object is not changed
    stored, meta = strip_meta(store.get_run(run_id))
    assert stored == original
    assert json.dumps(stored, sort_keys=True) == json.dumps(original, sort_keys=True)
    assert meta["id"] == run_id and meta["kind"] == "bench" and meta["cache_key"] == "k1"
    assert meta["settings"] == settings and meta["group_id"] is None
    # Reopening the file gives the same.
    again, _ = strip_meta(HistoryStore(store.path).get_run(run_id))
    assert again == original
    summary = store.list_runs()[0]
    assert summary == RunSummary(
        id=run_id, started_at=result["started_at"], kind="bench", source=result["source"],
        plan_name="tutorial", plan_summary="bf16×2, dynamic_int8×24", engine="x86", threads=4,
        wer=12.5, rtf=0.125, rtf_encoder=0.05, model_bytes=151_000_000, file_bytes=151_500_000,
        n_utterances=3, group_id=None, data="demo",
    )  # fmt: skip
    assert summary.as_dict()["plan_name"] == "tutorial"
    assert count(store.path, "utterances") == 3


def test_run_without_utterances_or_plan(store: HistoryStore) -> None:
    result = bench_result()
    del result["utterances"]
    stored, _ = strip_meta(store.get_run(store.add_run(result)))
    assert stored == result
    summary = store.list_runs()[0]
    assert summary.plan_name is None and summary.plan_summary == "float"


def test_summary_data_comes_from_the_stored_settings(store: HistoryStore) -> None:
    ids = [
        store.add_run(bench_result(), settings={"data": "/corpus/dev", "limit": 2}),
        store.add_run(bench_result(), settings={"limit": 2}),  # recorded before "data" existed
        store.add_run(bench_result()),
    ]
    with sqlite3.connect(store.path) as conn:  # an odd row must not break the listing
        conn.execute("UPDATE runs SET settings_json = '[1, 2]' WHERE id = ?", (ids[2],))
    data = {run.id: run.data for run in store.list_runs()}
    assert data == {ids[0]: "/corpus/dev", ids[1]: None, ids[2]: None}
    assert store.list_runs()[-1].as_dict()["data"] == "/corpus/dev"


def test_compare_group(store: HistoryStore) -> None:
    group = new_group_id()
    baseline = bench_result()
    plans = [bench_result(plan={"name": f"p{i}"}, wer=13.0 + i) for i in range(2)]
    ids = [store.add_run(r, kind="compare", group_id=group) for r in [baseline, *plans]]
    store.add_run(bench_result())  # unrelated
    members = store.get_group(group)
    assert [m["history"]["id"] for m in members] == ids
    assert [strip_meta(m)[0] for m in members] == [baseline, *plans]
    assert {r.group_id for r in store.list_runs(kind="compare")} == {group}


def test_listing_newest_first_and_filters(store: HistoryStore) -> None:
    times = ["2025-01-02T10:00:00+00:00", "2025-03-01T09:00:00+00:00", "2025-02-01T00:00:00Z",
             "2025-03-01T10:00:00+01:00"]  # fmt: skip
    ids = {
        t: store.add_run(bench_result(started_at=t, source=f"s{i % 2}"))
        for i, t in enumerate(times)
    }
    # 2025-03-01T10:00+01:00 is 09:00 UTC, the same instant as the second: ties go newest id first.
    expected = [ids[times[3]], ids[times[1]], ids[times[2]], ids[times[0]]]
    assert [r.id for r in store.list_runs()] == expected
    assert [r.id for r in store.list_runs(limit=2)] == expected[:2]
    assert [r.id for r in store.list_runs(source="s0")] == [ids[times[2]], ids[times[0]]]
    assert store.list_runs(source="nowhere") == []
    assert store.list_runs(kind="compare") == []
    assert len(store.list_runs(kind="bench")) == 4


def test_missing_or_odd_started_at_is_stored_now(store: HistoryStore) -> None:
    old = store.add_run(bench_result(started_at="2000-01-01T00:00:00"))
    result = bench_result()
    del result["started_at"]
    fresh = store.add_run(result)
    odd = bench_result(started_at="yesterday-ish")
    odd_id = store.add_run(odd)
    assert store.list_runs()[-1].id == old
    assert {r.id for r in store.list_runs(limit=2)} == {fresh, odd_id}
    assert strip_meta(store.get_run(odd_id))[0] == odd


def test_delete(store: HistoryStore) -> None:
    keep = store.add_run(bench_result())
    gone = store.add_run(bench_result(n=5))
    store.delete_run(gone)
    assert [r.id for r in store.list_runs()] == [keep]
    assert count(store.path, "utterances") == 3
    with pytest.raises(HistoryError, match=f"run {gone} is not in the history"):
        store.get_run(gone)
    with pytest.raises(HistoryError, match="not in the history"):
        store.delete_run(gone)


def test_baseline_cache(store: HistoryStore) -> None:
    key = make_cache_key(
        source="demo:whisper-tiny-en", data="demo", settings={"limit": 3, "threads": 4}
    )
    assert key == make_cache_key(
        settings={"threads": 4, "limit": 3}, data="demo", source="demo:whisper-tiny-en"
    )
    assert key != make_cache_key(
        source="demo:whisper-tiny-en", data="demo", settings={"limit": 4, "threads": 4}
    )
    assert store.find_cached(key) is None
    store.add_run(bench_result(started_at="2025-01-01T00:00:00Z", wer=10.0), cache_key=key)
    newer = store.add_run(bench_result(started_at="2025-02-01T00:00:00Z", wer=11.0), cache_key=key)
    store.add_run(bench_result(plan=PLAN), cache_key=None)
    found = store.find_cached(key)
    assert found is not None
    assert found.meta.id == newer and found.result.wer == 11.0  # metadata beside the result
    assert len(found.result.utterances) == 3
    assert store.find_cached("other") is None


def test_bad_input_is_refused_without_a_partial_run(store: HistoryStore) -> None:
    first = store.add_run(bench_result())
    with pytest.raises(HistoryError, match="source"):
        store.add_run({"wer": 1.0})
    with pytest.raises(HistoryError, match="not a number"):
        store.add_run(bench_result(wer="high"))  # type: ignore[arg-type]
    # An utterance that fails halfway through: the run row and earlier utterances roll back.
    broken = bench_result(n=5)
    broken["utterances"][3]["seconds"] = "soon"
    with pytest.raises(HistoryError, match="not a number"):
        store.add_run(broken)
    assert [r.id for r in store.list_runs()] == [first]
    assert count(store.path, "runs") == 1 and count(store.path, "utterances") == 3
    assert store.add_run(bench_result()) > first  # the store is still usable


CRASH_SCRIPT = """
import json, os, sys
from pathlib import Path
import speechquant.core.evaluation.history as history

store = history.HistoryStore(Path(sys.argv[1]))
original = history.utterance_row
calls = 0

def dying(*args):
    global calls
    calls += 1
    if calls == 3:
        os._exit(9)  # the process dies mid-transaction, after two utterance rows
    return original(*args)

history.utterance_row = dying
store.add_run(json.loads(Path(sys.argv[2]).read_text()))
"""


def test_crash_mid_write_keeps_earlier_runs(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    with HistoryStore(path) as store:
        before = [store.add_run(bench_result(wer=float(i))) for i in range(3)]
        expected = [store.get_run(i) for i in before]
    # A run large enough (~6 MB) that SQLite spills it into the database file before the crash.
    big = bench_result(n=6)
    big["skipped"] = [{"id": f"x{i}", "reason": "r" * 200} for i in range(30_000)]
    big_json = tmp_path / "big.json"
    big_json.write_text(json.dumps(big))
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(path), str(big_json)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    assert (tmp_path / "history.sqlite-journal").stat().st_size > 0  # a hot journal to roll back
    with HistoryStore(path) as store:
        assert sorted(r.id for r in store.list_runs()) == before
        assert [store.get_run(i) for i in before] == expected
        assert count(path, "utterances") == 9
        assert store.add_run(bench_result()) > before[-1]


def test_newer_schema_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    with HistoryStore(path) as store:
        store.add_run(bench_result())
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 98}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError) as info:
        HistoryStore(path)
    message = str(info.value)
    assert f"newer speechquant (schema {SCHEMA_VERSION + 98} > {SCHEMA_VERSION})" in message
    assert "upgrade speechquant or point SPEECHQUANT_DATA elsewhere" in message
    assert "\n" not in message
    assert path.read_bytes() == before


def _corrupt_pages(path: Path, *, last_only: bool) -> None:
    with HistoryStore(path) as store:
        for _ in range(20):
            store.add_run(bench_result(n=20))
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    first = len(data) - page if last_only else page  # one table leaf, or every page after the first
    for offset in range(first, len(data), page):
        data[offset : offset + 16] = b"\xa5" * 16
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["text", "truncated", "pages", "leaf", "foreign"])
def test_corrupt_or_foreign_file_is_refused_and_untouched(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "history.sqlite"
    if kind == "text":
        path.write_text("these are my notes, not a database\n" * 50)
    elif kind == "truncated":
        with HistoryStore(path) as store:
            store.add_run(bench_result())
        path.write_bytes(path.read_bytes()[:50])
    elif kind in ("pages", "leaf"):
        _corrupt_pages(path, last_only=kind == "leaf")
    else:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE recipes (name TEXT)")
        conn.commit()
        conn.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError) as info:
        store = HistoryStore(path)
        store.list_runs()  # in case damage only shows on use
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "point SPEECHQUANT_DATA elsewhere" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]


def test_closed_store_refuses(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite")
    store.close()
    with pytest.raises(HistoryError, match="closed"):
        store.list_runs()


def test_use_from_other_threads(store: HistoryStore) -> None:
    first = store.add_run(bench_result())
    seen: dict[str, Any] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                store.add_run(bench_result(source=f"thread-{n}", wer=float(i)))
            seen[f"list-{n}"] = store.list_runs(source=f"thread-{n}")
            seen[f"get-{n}"] = store.get_run(first)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(store.list_runs()) == 21
    for n in range(4):
        assert len(seen[f"list-{n}"]) == 5
        assert seen[f"get-{n}"]["history"]["id"] == first
    assert count(store.path, "utterances") == 21 * 3


def test_format_runs_table(store: HistoryStore) -> None:
    assert "No runs" in format_runs_table([])
    store.add_run(bench_result())
    store.add_run(
        bench_result(plan=PLAN, wer=13.25, source="speechbrain/asr-wav2vec2-commonvoice-14-en")
    )
    table = format_runs_table(store.list_runs())
    lines = table.splitlines()
    assert len(lines) == 3
    for column in (
        "id",
        "time",
        "kind",
        "source",
        "plan",
        "engine",
        "threads",
        "WER %",
        "RTF",
        "size MB",
    ):
        assert column in lines[0]
    assert "13.25" in lines[1] and "tutorial (bf16×2, dynamic_int8×24)" in lines[1]
    assert "12.50" in lines[2] and "float" in lines[2] and "151.0" in lines[2]
    # Columns line up: the source column starts at the same place on every line.
    starts = {
        line.index(word)
        for line, word in zip(lines, ["source", "speechbrain/", "demo:"], strict=True)
    }
    assert len(starts) == 1


def test_runs_table_pairs_each_run_with_its_baseline(store: HistoryStore) -> None:
    base = store.add_run(bench_result(wer=10.0), kind="baseline", group_id="g")
    plan_result = bench_result(plan=PLAN, wer=12.25)
    plan_result["rtf"] = plan_result["rtf"] / 2  # half the stored baseline's RTF
    plan_result["comparison"] = {"paired": True, "speedup": 1.8, "speedup_ci": [1.7, 1.9]}
    store.add_run(plan_result, kind="compare", group_id="g")
    unpaired = bench_result(plan={**PLAN, "name": "unpaired"}, wer=12.25)
    unpaired["rtf"] = unpaired["rtf"] / 2
    store.add_run(unpaired, kind="compare", group_id="g")
    lines = format_runs_table(
        store.list_runs(), lambda i: store.get_run(i).get("comparison")
    ).splitlines()
    assert "ΔWER" in lines[0] and "speed-up" in lines[0] and "vs" in lines[0]
    plan_line = next(line for line in lines[1:] if "tutorial" in line)
    # the speed-up timed together with the plan, not the stored baseline's RTF over the plan's
    assert "+2.25" in plan_line and "1.80x" in plan_line and "2.00x" not in plan_line
    assert f"#{base}" in plan_line
    stale_line = next(line for line in lines[1:] if "unpaired" in line)
    assert "2.00x" not in stale_line and "+2.25" in stale_line  # no paired timing: no speed-up
    base_line = next(
        line for line in lines[1:] if "tutorial" not in line and "unpaired" not in line
    )
    assert "+2.25" not in base_line and "1.80x" not in base_line  # no figures against itself
