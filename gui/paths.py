"""Paths the user types or picks: the one remembered folder of the file dialogs, the DATA
check that runs as a dataset path is typed, and where the run history lives."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings

from speechquant.core.data.datasets import DEMO
from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.history import HistoryStore

FOLDER_KEY = "dialogs/last_dir"


def data_problem(spec: str) -> str | None:
    """Why ``spec`` cannot be DATA, judged without reading it (None when it may be)."""
    if not spec:
        return "choose a dataset (a folder, a manifest or demo) in the Data settings"
    if spec.strip() == DEMO:
        return None
    path = Path(spec).expanduser()
    if not path.exists():
        return f"dataset {spec} does not exist; choose a folder, a CSV/TSV manifest or demo"
    if path.is_file() and path.suffix.lower() not in (".csv", ".tsv"):
        return f"dataset {spec} is a file but not a .csv/.tsv manifest"
    return None


def open_history() -> tuple[HistoryStore, str | None]:
    """The user's run history; a temporary one (and why) when it cannot be used."""
    try:
        return HistoryStore(), None
    except SpeechquantError as exc:
        fallback = Path(tempfile.mkdtemp(prefix="speechquant-")) / "history.sqlite"
        return HistoryStore(fallback), f"{exc}; runs go to {fallback} for this session"


class RememberedFolder:
    """The folder every file dialog starts in: the last one the user picked anything from."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    def get(self) -> str:
        value = str(self.settings.value(FOLDER_KEY, "") or "")
        return value if value and Path(value).is_dir() else str(Path.home())

    def remember(self, path: str | Path) -> None:
        target = Path(path).expanduser()
        folder = target if target.is_dir() else target.parent
        self.settings.setValue(FOLDER_KEY, str(folder))
