"""File ▸ Export quantized model…: the window's model, quantized by its plan, written by a worker."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from speechquant.core.errors import SpeechquantError
from speechquant.core.export.loader import is_export_folder

from .job_slot import JobSlot
from .jobs import ExportOutcome, describe_export, export_job
from .paths import RememberedFolder
from .run_context import ContextSource
from .worker import Worker


def suggested_name(source: str, plan_name: str) -> str:
    """A folder name for an export: ``<model>-<plan>`` with only safe characters."""
    model = re.split(r"[/:\\]", source.rstrip("/\\"))[-1] or "model"
    return re.sub(r"[^\w.-]+", "-", f"{model}-{plan_name}").strip("-.") or "export"


class Exporter(QObject):
    """Owns the export action; the job runs in the window's job slot.

    ``exported(ExportOutcome)`` follows a written export; ``failed(text)`` a refusal or error
    (the plan is left as it was), ``message(text, level)`` what to log.
    """

    exported = Signal(object)
    message = Signal(str, str)
    failed = Signal(str)

    def __init__(
        self, slot: JobSlot, contexts: ContextSource, folder: RememberedFolder, parent: QWidget
    ) -> None:
        super().__init__(parent)
        self.slot = slot
        self.contexts = contexts
        self.folder = folder
        self.parent_widget = parent
        self.action = QAction("Export quantized model…", parent)
        self.action.setIconText("Export…")
        self.action.setToolTip(
            "Quantize the open model by the current plan (calibrating static entries on the "
            "Data settings) and save it as a folder that opens again as a model"
        )
        self.action.setEnabled(False)
        self.action.triggered.connect(self.ask)
        slot.busyChanged.connect(lambda _busy: self._update())

    def _update(self) -> None:
        model = self.contexts.model
        self.action.setEnabled(model is not None and not self.slot.busy)

    def model_changed(self) -> None:
        self._update()

    def ask(self) -> None:
        """Ask for a new destination folder, then export into it."""
        model = self.contexts.model
        if model is None:
            self.failed.emit("open a model before exporting it")
            return
        start = Path(self.folder.get())
        name = suggested_name(model.source, self.contexts.tree_model.plan.name)
        path, _ = QFileDialog.getSaveFileName(
            self.parent_widget,
            "Export quantized model to a new folder",
            str(start / name),
            "Export folder (*)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return
        overwrite = False
        if is_export_folder(path):
            answer = QMessageBox.question(
                self.parent_widget, "Replace export", f"{path} holds an earlier export. Replace it?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            overwrite = True
        self.folder.remember(Path(path).parent)
        self.export_to(path, overwrite=overwrite)

    def export_to(self, out: str | Path, overwrite: bool = False) -> bool:
        """Start the export of the open model and plan to ``out``; False if it cannot start."""
        if not self.slot.can_start():
            return False
        try:
            ctx = self.contexts.snapshot("exporting it", need_data=False, float_model=True)
        except SpeechquantError as exc:
            self.failed.emit(str(exc))
            return False
        if ctx.plan.is_float():
            self.failed.emit(
                "the plan quantizes nothing; choose a preset or set schemes before exporting"
            )
            return False
        self.message.emit(f"export: plan {ctx.plan.name} to {out}", "info")
        job = export_job(ctx.model, ctx.plan, out, ctx.data, ctx.bench, ctx.history, overwrite)
        worker = Worker(job, "export")
        worker.result.connect(self._done)
        return self.slot.start(worker, "exporting") is not None

    @Slot(object)
    def _done(self, outcome: ExportOutcome) -> None:
        self.message.emit(describe_export(outcome), "info")
        self.exported.emit(outcome)
