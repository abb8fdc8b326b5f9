"""Paths the user types or picks: the one remembered folder of the file dialogs, and the DATA
check that runs as a dataset path is typed."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from speechquant.core.data.datasets import DEMO

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
