"""Edit a stored run's name, tags and note (Results tab ▸ right-click a run): the dialog, and
the editor that opens it and stores what it holds."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.history import HistoryStore, RunNotes
from speechquant.core.evaluation.run_notes import MAX_NAME, parse_tags


class RunNotesDialog(QDialog):
    """Three fields (tags typed comma-separated). OK calls ``save(dialog)``, which stores them
    and returns None, or a reason shown in the dialog, which then stays open."""

    def __init__(
        self,
        run_id: int,
        label: str,
        notes: RunNotes,
        save: Callable[[RunNotesDialog], str | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.run_id = run_id
        self.save = save
        self.setWindowTitle(f"Run #{run_id}")
        self.name = QLineEdit(notes.name or "")
        self.name.setObjectName("runName")
        self.name.setMaxLength(MAX_NAME)
        self.name.setPlaceholderText("a name of your own, e.g. int8 encoder, engine x86")
        self.tags = QLineEdit(", ".join(notes.tags))
        self.tags.setObjectName("runTags")
        self.tags.setPlaceholderText("comma-separated, e.g. keep, paper")
        self.note = QPlainTextEdit(notes.note or "")
        self.note.setObjectName("runNote")
        self.note.setPlaceholderText("what you want to remember about this run")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #c62828")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(label))
        form.addRow("Name", self.name)
        form.addRow("Tags", self.tags)
        form.addRow("Note", self.note)
        form.addRow(self.error)
        form.addRow(buttons)
        self.resize(460, 300)

    def accept(self) -> None:
        problem = self.save(self)
        if problem:
            self.error.setText(problem)
            return
        super().accept()


class RunNotesEditor(QObject):
    """Opens a :class:`RunNotesDialog` for a run and stores its fields in the history."""

    saved = Signal(int)
    """The run whose notes were stored."""
    message = Signal(str)
    failed = Signal(str)

    def __init__(self, history: HistoryStore, parent: QWidget) -> None:
        super().__init__(parent)
        self.history = history
        self.parent_widget = parent
        self.dialog: RunNotesDialog | None = None

    def edit(self, run_id: int, label: str) -> RunNotesDialog | None:
        try:
            notes = self.history.notes(run_id)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return None
        self.dialog = RunNotesDialog(run_id, label, notes, self._store, self.parent_widget)
        self.dialog.open()
        return self.dialog

    def _store(self, dialog: RunNotesDialog) -> str | None:
        try:
            notes = self.history.annotate(
                dialog.run_id,
                name=dialog.name.text(),
                tags=parse_tags(dialog.tags.text()),
                note=dialog.note.toPlainText(),
            )
        except SpeechquantError as exc:
            return str(exc)
        tags = ", ".join(notes.tags) or "no tags"
        self.message.emit(f"run #{dialog.run_id}: {notes.name or 'unnamed'}, {tags}")
        self.saved.emit(dialog.run_id)
        return None
