"""File ▸ Export quantized model…: the window's model, quantized by its plan, written by a worker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox

from speechquant.core.errors import SpeechquantError
from speechquant.core.export.loader import is_export_folder

from .jobs import ExportOutcome, describe_export, export_job
from .worker import Worker

if TYPE_CHECKING:
    from .main_window import MainWindow


def suggested_name(source: str, plan_name: str) -> str:
    """A folder name for an export: ``<model>-<plan>`` with only safe characters."""
    model = re.split(r"[/:\\]", source.rstrip("/\\"))[-1] or "model"
    return re.sub(r"[^\w.-]+", "-", f"{model}-{plan_name}").strip("-.") or "export"


class Exporter(QObject):
    """Owns the export action; the job runs through the window's single worker slot.

    ``exported(ExportOutcome)`` follows a written export; failures go to the window's log and
    error dialog (``jobFailed``), and the plan is left as it was.
    """

    exported = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.action = QAction("Export quantized model…", window)
        self.action.setIconText("Export…")
        self.action.setToolTip(
            "Quantize the open model by the current plan (calibrating static entries on the "
            "Data settings) and save it as a folder that opens again as a model"
        )
        self.action.setEnabled(False)
        self.action.triggered.connect(self.ask)
        window.modelLoaded.connect(lambda _model: self.action.setEnabled(True))

    def ask(self) -> None:
        """Ask for a new destination folder, then export into it."""
        window = self.window
        if window.model is None:
            window.report_error("open a model before exporting it")
            return
        start = Path(str(window.settings.value("export/last_dir", str(Path.home()))))
        name = suggested_name(window.model.source, window.plan.name)
        path, _ = QFileDialog.getSaveFileName(
            window,
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
                window, "Replace export", f"{path} holds an earlier export. Replace it?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            overwrite = True
        window.settings.setValue("export/last_dir", str(Path(path).parent))
        self.export_to(path, overwrite=overwrite)

    def export_to(self, out: str | Path, overwrite: bool = False) -> bool:
        """Start the export of the window's model and plan to ``out``; False if it cannot start."""
        window = self.window
        model = window.model
        if model is None:
            window.report_error("open a model before exporting it")
            return False
        if model.plan is not None:
            window.report_error(
                f"{model.source} is already quantized (an export); open the float model to "
                "export another plan"
            )
            return False
        if not window._can_start():
            return False
        try:
            plan = window.current_plan()
            bench = window.settings_panel.bench_settings()
        except SpeechquantError as exc:
            window.report_error(str(exc))
            return False
        if plan.is_float():
            window.report_error(
                "the plan quantizes nothing; choose a preset or set schemes before exporting"
            )
            return False
        data = window.settings_panel.dataset_spec()
        window.log(f"export: plan {plan.name} to {out}")
        job = export_job(model, plan, out, data, bench, window.history, overwrite)
        worker = Worker(job, "export")
        worker.result.connect(self._done)
        window._start(worker, "exporting")
        return True

    @Slot(object)
    def _done(self, outcome: ExportOutcome) -> None:
        self.window.log(describe_export(outcome))
        self.exported.emit(outcome)
