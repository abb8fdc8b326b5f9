"""The run history: every bench/compare result kept in a small SQLite database.

One row per run in ``runs`` (the main figures as columns for querying and sorting, the full
``bench --json`` object for a faithful round trip, and the user's name, tags and note) and one
row per utterance in ``utterances``. The file itself (schema, upgrades, checks) is
:mod:`.history_db`'s.
Each run is written in a single transaction, so a crash mid-write never leaves a partial run.
A connection is opened per call, so a store may be used from any thread (the GUI's QThread).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from speechquant.core.errors import HistoryError
from speechquant.core.evaluation.history_db import SCHEMA_VERSION, SUMMARY_COLUMNS, HistoryDatabase
from speechquant.core.evaluation.history_rows import (
    UTTERANCE_KEYS,
    damaged,
    data_of,
    is_number,
    plan_columns,
    summary_usable,
    utterance_row,
)
from speechquant.core.evaluation.history_rows import number_field as _num
from speechquant.core.evaluation.results import BenchResult, RunMeta, StoredRun
from speechquant.core.evaluation.run_notes import (
    RunNotes,
    clean_name,
    clean_note,
    clean_tag,
    clean_tags,
    tags_from_json,
)
from speechquant.core.paths import data_dir

__all__ = ["SCHEMA_VERSION", "HistoryStore", "RunNotes", "RunSummary"]

HISTORY_FILENAME = "history.sqlite"
META_KEY = "history"
"""The key ``get_run`` adds to a stored result: ``{id, kind, group_id, cache_key, settings,
recorded_at, name, tags, note}``."""


@dataclass(frozen=True)
class RunSummary:
    """One line of the history listing (the queryable columns of a stored run)."""

    id: int
    started_at: str
    kind: str
    source: str
    plan_name: str | None
    """The plan's ``name`` (or ``preset``); ``None`` for the float baseline."""
    plan_summary: str
    """Scheme counts such as ``"dynamic_int8×24"``; ``"float"`` when nothing is quantized."""
    engine: str | None
    threads: int | None
    wer: float | None
    rtf: float | None
    rtf_encoder: float | None
    model_bytes: int | None
    file_bytes: int | None
    n_utterances: int | None
    group_id: str | None
    data: str | None = None
    """The DATA the run evaluated (``settings["data"]`` as stored); ``None`` when not recorded."""
    name: str | None = None
    """The user's name for the run (see :meth:`HistoryStore.annotate`); ``None``: unnamed."""
    tags: tuple[str, ...] = ()
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``speechquant history --json``)."""
        return asdict(self)


def new_group_id() -> str:
    """A fresh id tying a compare run's baseline and plans together."""
    return uuid.uuid4().hex


def make_cache_key(**parts: Any) -> str:
    """A stable key for a float baseline from what determines it (source, data, settings …).

    Keyword order does not matter; values are serialised as canonical JSON (non-JSON values via ``str``).
    """
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _parse_time(text: str) -> datetime:
    """An ISO time (``Z`` accepted; naive times are local); raises ValueError."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class HistoryStore(HistoryDatabase):
    """The SQLite results store (``data_dir()/history.sqlite`` unless ``path`` is given).

    Opening checks the file: a newer schema or a corrupt/foreign file raises :class:`HistoryError`
    and leaves the file untouched. Usable from any thread; use as a context manager or call ``close()``.
    """

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(Path(path) if path is not None else data_dir() / HISTORY_FILENAME)

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add_run(
        self,
        result: Mapping[str, Any],
        *,
        kind: str = "bench",
        settings: Mapping[str, Any] | None = None,
        group_id: str | None = None,
        cache_key: str | None = None,
    ) -> int:
        """Store one ``bench --json`` object with its utterances in one transaction; return its id.

        ``kind`` is ``"bench"`` or ``"compare"``; a compare run stores its baseline and each plan
        with the same ``group_id`` (see :func:`new_group_id`). ``cache_key`` marks a float baseline
        that :meth:`find_cached` can return later. ``settings`` is the run's setup as a dict;
        its ``"data"`` entry (the DATA evaluated) shows as :attr:`RunSummary.data`. Non-JSON
        values are stored as strings.
        """
        if not isinstance(result, Mapping) or "source" not in result:
            raise HistoryError("run result has no 'source'; pass one bench --json object")
        if META_KEY in result:
            raise HistoryError(
                f"run result already holds the key {META_KEY!r}; remove it before storing"
            )
        stored = dict(result)
        utterances = result.get("utterances")
        if isinstance(utterances, list):
            stored["utterances"] = []  # kept in their own table, refilled by get_run
        else:
            utterances = []
        try:
            result_json = json.dumps(stored, default=str)
            settings_json = None if settings is None else json.dumps(dict(settings), default=str)
        except ValueError as exc:
            raise HistoryError(
                f"run result cannot be stored as JSON ({exc}); pass the bench --json object unchanged"
            ) from exc
        now = datetime.now(timezone.utc)
        started_at = str(result.get("started_at") or now.isoformat(timespec="seconds"))
        try:
            started_ts = _parse_time(started_at).timestamp()
        except ValueError:
            started_ts = now.timestamp()
        plan_name, plan_summary = plan_columns(result)
        row = (
            started_at, started_ts, now.isoformat(timespec="seconds"), kind, str(result["source"]),
            plan_name, plan_summary, result.get("engine"), _num(result, "threads", int),
            _num(result, "n_utterances", int), _num(result, "audio_seconds"), _num(result, "wer"),
            _num(result, "rtf"), _num(result, "rtf_encoder"), _num(result, "model_bytes", int),
            _num(result, "file_bytes", int), _num(result, "peak_rss_bytes", int),
            group_id, cache_key, settings_json, result_json,
        )  # fmt: skip
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (started_at, started_ts, recorded_at, kind, source, plan_name, "
                "plan_summary, engine, threads, n_utterances, audio_seconds, wer, rtf, rtf_encoder, "
                "model_bytes, file_bytes, peak_rss_bytes, group_id, cache_key, settings_json, "
                "result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            run_id = cursor.lastrowid
            assert run_id is not None
            conn.executemany(
                "INSERT INTO utterances VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (utterance_row(run_id, i, utt) for i, utt in enumerate(utterances)),
            )
        return run_id

    def delete_run(self, run_id: int) -> None:
        """Remove one run and its utterances; an unknown id raises :class:`HistoryError`."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM utterances WHERE run_id = ?", (run_id,))
            if conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise self._missing(run_id)

    def _missing(self, run_id: int) -> HistoryError:
        return HistoryError(
            f"run {run_id} is not in the history {self.path}; list the runs with `speechquant history`"
        )

    def list_runs(
        self,
        limit: int | None = None,
        source: str | None = None,
        kind: str | None = None,
        tag: str | None = None,
    ) -> list[RunSummary]:
        """Stored runs, newest first (by ``started_at``, then by id), optionally filtered
        (``tag``: only runs carrying that tag)."""
        where: list[str] = []
        args: list[Any] = []
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        wanted = clean_tag(tag) if tag is not None else None
        sql = f"SELECT {SUMMARY_COLUMNS}, settings_json, run_name, tags_json, note FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_ts DESC, id DESC"
        if limit is not None and wanted is None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        runs = [
            replace(
                RunSummary(*row[:-4]),
                data=data_of(row[-4]),
                name=row[-3],
                tags=tags_from_json(row[0], row[-2]),
                note=row[-1],
            )
            for row in rows
            if summary_usable(row)
        ]
        if wanted is not None:
            runs = [run for run in runs if wanted in run.tags]
            runs = runs if limit is None else runs[: max(0, int(limit))]
        return runs

    def notes(self, run_id: int) -> RunNotes:
        """The name, tags and note of one run."""
        with self._connect() as conn:
            return self._notes(conn, run_id)

    def annotate(
        self,
        run_id: int,
        *,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        note: str | None = None,
    ) -> RunNotes:
        """Set a run's name, tags and note; ``None`` leaves one as it is, ``""`` (or no tags)
        clears it. Returns what is stored now; bad text raises :class:`HistoryError`."""
        with self._transaction() as conn:
            old = self._notes(conn, run_id)
            new = RunNotes(
                name=old.name if name is None else clean_name(name),
                tags=old.tags if tags is None else clean_tags(tags),
                note=old.note if note is None else clean_note(note),
            )
            self._store_notes(conn, run_id, new)
        return new

    def tag(self, run_id: int, *tags: str) -> RunNotes:
        """Add tags to a run (those it has already are kept once)."""
        with self._transaction() as conn:
            old = self._notes(conn, run_id)
            new = replace(old, tags=clean_tags([*old.tags, *tags]))
            self._store_notes(conn, run_id, new)
        return new

    def untag(self, run_id: int, *tags: str) -> RunNotes:
        """Remove tags from a run; a tag it does not carry raises :class:`HistoryError`."""
        with self._transaction() as conn:
            old = self._notes(conn, run_id)
            gone = clean_tags(tags)
            missing = [t for t in gone if t not in old.tags]
            if missing:
                carried = ", ".join(old.tags) or "none"
                raise HistoryError(f"run {run_id} has no tag {missing[0]!r} (its tags: {carried})")
            new = replace(old, tags=tuple(t for t in old.tags if t not in gone))
            self._store_notes(conn, run_id, new)
        return new

    def _notes(self, conn: sqlite3.Connection, run_id: int) -> RunNotes:
        row = conn.execute(
            "SELECT run_name, tags_json, note FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise self._missing(run_id)
        return RunNotes(name=row[0], tags=tags_from_json(run_id, row[1]), note=row[2])

    @staticmethod
    def _store_notes(conn: sqlite3.Connection, run_id: int, notes: RunNotes) -> None:
        conn.execute(
            "UPDATE runs SET run_name = ?, tags_json = ?, note = ? WHERE id = ?",
            (notes.name, json.dumps(list(notes.tags)), notes.note, run_id),
        )

    def get_run(self, run_id: int) -> dict[str, Any]:
        """The stored ``bench --json`` object incl. utterances, plus ``result["history"]``
        (``id, kind, group_id, cache_key, settings, recorded_at``); :meth:`load_run` gives
        the same as a :class:`~.results.StoredRun` that keeps the two apart."""
        with self._connect() as conn:
            return self._load(conn, run_id)

    def get_group(self, group_id: str) -> list[dict[str, Any]]:
        """All runs of one compare, in the order stored (baseline first), as :meth:`get_run` gives them."""
        with self._connect() as conn:
            sql = "SELECT id FROM runs WHERE group_id = ? ORDER BY id"
            return [self._load(conn, row[0]) for row in conn.execute(sql, (group_id,)).fetchall()]

    def find_cached(self, key: str) -> StoredRun | None:
        """The newest measurement stored with ``cache_key=key`` (a float baseline or a plan
        measured by sensitivity or search), as :meth:`load_run` gives it, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT id FROM runs WHERE cache_key = ? ORDER BY started_ts DESC, id DESC LIMIT 1",
                (key,),
            ).fetchone()
            if row is None:
                return None
            try:
                return _stored(self._load(conn, row[0]))
            except HistoryError as exc:
                damaged(row[0], f"{exc}; the float baseline is measured again")
                return None

    def load_run(self, run_id: int) -> StoredRun:
        """One stored run as a typed result with the history's metadata beside it."""
        return _stored(self.get_run(run_id))

    def _load(self, conn: sqlite3.Connection, run_id: int) -> dict[str, Any]:
        row = conn.execute(
            "SELECT kind, group_id, cache_key, settings_json, recorded_at, result_json, run_name, "
            "tags_json, note FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise self._missing(run_id)
        kind, group_id, cache_key, settings_json, recorded_at, result_json = row[:6]
        try:
            result: dict[str, Any] = json.loads(result_json)
            if not isinstance(result, dict):
                raise ValueError("not a JSON object")
            if result.get("wer") is not None and not is_number(result["wer"]):
                raise ValueError(f"its wer holds {result['wer']!r}, not a number")
        except (TypeError, ValueError) as exc:
            raise HistoryError(
                f"run {run_id} in the history {self.path} is damaged ({exc}); delete it with "
                f"`speechquant history --delete {run_id}`"
            ) from None
        if isinstance(result.get("utterances"), list):
            rows = conn.execute(
                "SELECT utt_id, ref, hyp, seconds, audio_seconds, extra_json FROM utterances "
                "WHERE run_id = ? ORDER BY idx",
                (run_id,),
            )
            result["utterances"] = [
                dict(zip(UTTERANCE_KEYS, cols[:5], strict=True)) | json.loads(cols[5] or "{}")
                for cols in rows
            ]
        settings = None if settings_json is None else json.loads(settings_json)
        result[META_KEY] = dict(
            id=run_id, kind=kind, group_id=group_id, cache_key=cache_key, settings=settings,
            recorded_at=recorded_at, name=row[6], tags=list(tags_from_json(run_id, row[7])),
            note=row[8],
        )  # fmt: skip
        return result


def _stored(data: dict[str, Any]) -> StoredRun:
    meta = data.pop(META_KEY)
    meta["tags"] = tuple(meta.get("tags") or ())
    return StoredRun(result=BenchResult.from_json(data), meta=RunMeta(**meta))
