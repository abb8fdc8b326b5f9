"""The run history: every bench/compare result kept in a small SQLite database.

One row per run in ``runs`` (the main figures as columns for querying and sorting, plus the full
``bench --json`` object for a faithful round trip) and one row per utterance in ``utterances``.
Each run is written in a single transaction, so a crash mid-write never leaves a partial run.
A connection is opened per call, so a store may be used from any thread (the GUI's QThread).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from speechquant.core.errors import HistoryError
from speechquant.core.evaluation.history_rows import damaged, is_number, summary_usable
from speechquant.core.evaluation.results import BenchResult, RunMeta, StoredRun
from speechquant.core.paths import data_dir

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the databases this version writes."""

HISTORY_FILENAME = "history.sqlite"
META_KEY = "history"
"""The key ``get_run`` adds to a stored result: ``{id, kind, group_id, cache_key, settings, recorded_at}``."""

_UTTERANCE_KEYS = ("id", "ref", "hyp", "seconds", "audio_seconds")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, started_ts REAL NOT NULL,
    recorded_at TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL, plan_name TEXT,
    plan_summary TEXT NOT NULL, engine TEXT, threads INTEGER, n_utterances INTEGER,
    audio_seconds REAL, wer REAL, rtf REAL, rtf_encoder REAL, model_bytes INTEGER,
    file_bytes INTEGER, peak_rss_bytes INTEGER, group_id TEXT, cache_key TEXT,
    settings_json TEXT, result_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_ts DESC, id DESC);
CREATE INDEX IF NOT EXISTS runs_source ON runs (source);
CREATE INDEX IF NOT EXISTS runs_group ON runs (group_id);
CREATE INDEX IF NOT EXISTS runs_cache_key ON runs (cache_key);
CREATE TABLE IF NOT EXISTS utterances (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, idx INTEGER NOT NULL,
    utt_id TEXT NOT NULL, ref TEXT, hyp TEXT, seconds REAL, audio_seconds REAL, extra_json TEXT,
    PRIMARY KEY (run_id, idx)
);
"""
_OWN_TABLES = {"runs", "utterances", "sqlite_sequence"}

_SUMMARY_COLUMNS = (
    "id, started_at, kind, source, plan_name, plan_summary, engine, threads, wer, rtf, "
    "rtf_encoder, model_bytes, file_bytes, n_utterances, group_id"
)


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


_MOVE_ASIDE = "move the file aside or point SPEECHQUANT_DATA elsewhere"


def _fail_path(path: Path, problem: str, fix: str = _MOVE_ASIDE) -> HistoryError:
    return HistoryError(f"run history {path} {problem}; {fix}")


def _num(data: Mapping[str, Any], key: str, kind: type = float) -> Any:
    """``data[key]`` as ``int``/``float`` (missing or ``None`` gives ``None``); a clear error otherwise."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HistoryError(
            f"run field {key!r} holds {value!r}, not a number; pass bench --json as is"
        )
    return kind(value)


def _parse_time(text: str) -> datetime:
    """An ISO time (``Z`` accepted; naive times are local); raises ValueError."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _plan_columns(result: Mapping[str, Any]) -> tuple[str | None, str]:
    plan = result.get("plan")
    name: str | None = None
    if isinstance(plan, Mapping):
        name = str(plan.get("name") or plan.get("preset") or "custom")
    schemes = result.get("scheme_summary") or {}
    parts = [f"{scheme}×{count}" for scheme, count in sorted(schemes.items()) if count]
    return name, ", ".join(parts) or "float"


def _data_of(settings_json: str | None) -> str | None:
    """The ``data`` entry of a run's stored settings (older runs and other callers lack it)."""
    try:
        settings = json.loads(settings_json) if settings_json else None
    except ValueError:
        return None
    data = settings.get("data") if isinstance(settings, dict) else None
    return None if data is None else str(data)


def _utterance_row(run_id: int, idx: int, utt: Mapping[str, Any]) -> tuple[Any, ...]:
    if not isinstance(utt, Mapping) or "id" not in utt:
        raise HistoryError(
            f"utterance {idx} of the run has no 'id'; pass the bench --json object unchanged"
        )
    extra = {k: v for k, v in utt.items() if k not in _UTTERANCE_KEYS}
    return (
        run_id,
        idx,
        str(utt["id"]),
        None if utt.get("ref") is None else str(utt["ref"]),
        None if utt.get("hyp") is None else str(utt["hyp"]),
        _num(utt, "seconds"),
        _num(utt, "audio_seconds"),
        json.dumps(extra, default=str) if extra else None,
    )


class HistoryStore:
    """The SQLite results store (``data_dir()/history.sqlite`` unless ``path`` is given).

    Opening checks the file: a newer schema or a corrupt/foreign file raises :class:`HistoryError`
    and leaves the file untouched. Usable from any thread; use as a context manager or call ``close()``.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / HISTORY_FILENAME
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fix = "point SPEECHQUANT_DATA at a writable folder"
            raise _fail_path(self.path, f"cannot be created ({exc.strerror})", fix) from exc
        self._open_or_create()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise HistoryError("run history store is closed; open a new HistoryStore")
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            fix = "check the file's permissions or point SPEECHQUANT_DATA elsewhere"
            raise _fail_path(self.path, f"cannot be opened ({exc})", fix) from exc
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            raise _fail_path(self.path, f"cannot be used ({exc})") from exc
        finally:
            conn.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _open_or_create(self) -> None:
        """Check the file (reads only) before creating the schema in an empty database."""
        with self._connect() as conn:
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = {
                    row[0]
                    for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                }
                check = (
                    conn.execute("PRAGMA quick_check").fetchone()[0] if version or tables else "ok"
                )
            except sqlite3.DatabaseError as exc:
                raise _fail_path(self.path, f"is not a readable SQLite database ({exc})") from exc
            if version > SCHEMA_VERSION:
                raise _fail_path(
                    self.path,
                    f"was written by a newer speechquant (schema {version} > {SCHEMA_VERSION})",
                    "upgrade speechquant or point SPEECHQUANT_DATA elsewhere",
                )
            if check != "ok":
                raise _fail_path(self.path, f"is damaged ({' '.join(str(check).split())})")
            if version == SCHEMA_VERSION:
                return
            if tables - _OWN_TABLES:
                raise _fail_path(
                    self.path, "is a SQLite database but not a speechquant run history"
                )
        with self._transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Stop using the store (connections are per call, so nothing stays open)."""
        self._closed = True

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
        plan_name, plan_summary = _plan_columns(result)
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
                (_utterance_row(run_id, i, utt) for i, utt in enumerate(utterances)),
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
        self, limit: int | None = None, source: str | None = None, kind: str | None = None
    ) -> list[RunSummary]:
        """Stored runs, newest first (by ``started_at``, then by id), optionally filtered."""
        where: list[str] = []
        args: list[Any] = []
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        sql = f"SELECT {_SUMMARY_COLUMNS}, settings_json FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [
            replace(RunSummary(*row[:-1]), data=_data_of(row[-1]))
            for row in rows
            if summary_usable(row)
        ]

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
            "SELECT kind, group_id, cache_key, settings_json, recorded_at, result_json FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise self._missing(run_id)
        kind, group_id, cache_key, settings_json, recorded_at, result_json = row
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
                dict(zip(_UTTERANCE_KEYS, cols[:5], strict=True)) | json.loads(cols[5] or "{}")
                for cols in rows
            ]
        settings = None if settings_json is None else json.loads(settings_json)
        result[META_KEY] = dict(
            id=run_id, kind=kind, group_id=group_id, cache_key=cache_key, settings=settings,
            recorded_at=recorded_at,
        )  # fmt: skip
        return result


def _stored(data: dict[str, Any]) -> StoredRun:
    meta = data.pop(META_KEY)
    return StoredRun(result=BenchResult.from_json(data), meta=RunMeta(**meta))
