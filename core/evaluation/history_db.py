"""The run history's SQLite file: its schema and version, the upgrades of older files, and
checked connections (a newer, corrupt or foreign file is refused and left untouched).

Version 1 held the runs and their utterances; version 2 adds the user's name, tags and note per
run (``run_name``, ``tags_json``, ``note`` on ``runs``). A version-1 file is upgraded in place,
in one transaction, the first time this speechquant opens it; its runs are kept as they were.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from speechquant.core.errors import HistoryError

SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of the databases this version writes."""

CREATE = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, started_ts REAL NOT NULL,
    recorded_at TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL, plan_name TEXT,
    plan_summary TEXT NOT NULL, engine TEXT, threads INTEGER, n_utterances INTEGER,
    audio_seconds REAL, wer REAL, rtf REAL, rtf_encoder REAL, model_bytes INTEGER,
    file_bytes INTEGER, peak_rss_bytes INTEGER, group_id TEXT, cache_key TEXT,
    settings_json TEXT, result_json TEXT NOT NULL,
    run_name TEXT, tags_json TEXT NOT NULL DEFAULT '[]', note TEXT
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

UPGRADES: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE runs ADD COLUMN run_name TEXT",
        "ALTER TABLE runs ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE runs ADD COLUMN note TEXT",
    ),
}
"""Version -> the statements that bring a database of that version to the next one."""

OWN_TABLES = {"runs", "utterances", "sqlite_sequence"}

SUMMARY_COLUMNS = (
    "id, started_at, kind, source, plan_name, plan_summary, engine, threads, wer, rtf, "
    "rtf_encoder, model_bytes, file_bytes, n_utterances, group_id"
)
"""The :class:`~.history.RunSummary` fields read positionally, in their order."""


def _create(conn: sqlite3.Connection) -> None:
    for statement in CREATE.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring the file to :data:`SCHEMA_VERSION`; the version is read inside the write
    transaction, so two processes opening an old file at once upgrade it once."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    has_runs = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
    ).fetchone()
    if version == 0 and not has_runs:
        _create(conn)
        return
    version = max(version, 1)  # a runs table without a version predates versioning: version 1
    while version < SCHEMA_VERSION:
        for statement in UPGRADES[version]:
            conn.execute(statement)
        version += 1
        conn.execute(f"PRAGMA user_version = {version}")


MOVE_ASIDE = "move the file aside or point SPEECHQUANT_DATA elsewhere"


def fail_path(path: Path, problem: str, fix: str = MOVE_ASIDE) -> HistoryError:
    return HistoryError(f"run history {path} {problem}; {fix}")


class HistoryDatabase:
    """The checked SQLite file under a :class:`~.history.HistoryStore`: one connection per
    call (usable from any thread), write transactions, and the check-then-create-or-upgrade
    done once when it is opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fix = "point SPEECHQUANT_DATA at a writable folder"
            raise fail_path(self.path, f"cannot be created ({exc.strerror})", fix) from exc
        self._open_or_create()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise HistoryError("run history store is closed; open a new HistoryStore")
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            fix = "check the file's permissions or point SPEECHQUANT_DATA elsewhere"
            raise fail_path(self.path, f"cannot be opened ({exc})", fix) from exc
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            raise fail_path(self.path, f"cannot be used ({exc})") from exc
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
        """Check the file (reads only) before creating or upgrading the schema."""
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
                raise fail_path(self.path, f"is not a readable SQLite database ({exc})") from exc
            if version > SCHEMA_VERSION:
                raise fail_path(
                    self.path,
                    f"was written by a newer speechquant (schema {version} > {SCHEMA_VERSION})",
                    "upgrade speechquant or point SPEECHQUANT_DATA elsewhere",
                )
            if check != "ok":
                raise fail_path(self.path, f"is damaged ({' '.join(str(check).split())})")
            if version == SCHEMA_VERSION:
                return
            if tables - OWN_TABLES:
                raise fail_path(self.path, "is a SQLite database but not a speechquant run history")
        with self._transaction() as conn:
            _upgrade(conn)

    def close(self) -> None:
        """Stop using the store (connections are per call, so nothing stays open)."""
        self._closed = True
