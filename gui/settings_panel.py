"""Benchmark and quantization settings, remembered between sessions in QSettings."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.cluster.settings import ClusterSettings
from speechquant.core.data.datasets import DEMO
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.metrics import NORMALIZERS
from speechquant.core.quantization.schemes import setting_choices
from speechquant.core.quantization.settings import DECODER_STEPS, ENGINES, QuantSettings

from .paths import RememberedFolder, data_problem

PREFIX = "settings/"


def _spin(low: int, high: int, value: int, special: str | None = None) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)
    return box


def _combo(values: Any, current: str) -> QComboBox:
    box = QComboBox()
    box.addItems(list(values))
    box.setCurrentText(current)
    return box


class PathField(QWidget):
    """A line edit with a browse button offering a folder or a manifest file.

    The text is checked as it is typed (:func:`~.run_context.data_problem`): a bad path turns
    the field red with the reason as its tooltip, and :attr:`problem` holds that reason.
    """

    def __init__(
        self,
        placeholder: str,
        folder: RememberedFolder | None = None,
        optional: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.folder = folder
        self.optional = optional
        self.problem: str | None = None
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Browse for a data folder or a CSV/TSV manifest")
        menu = QMenu(browse)
        menu.addAction("Folder…", self._pick_folder)
        menu.addAction("Manifest file…", self._pick_file)
        menu.addAction("Built-in demo set", lambda: self.edit.setText("demo"))
        browse.setMenu(menu)
        browse.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.browse = browse
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)
        self.edit.textChanged.connect(self._check)
        self._check()

    def _start(self) -> str:
        text = self.text()
        if text and text != DEMO and os.path.exists(os.path.expanduser(text)):
            return text
        return self.folder.get() if self.folder is not None else ""

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", self._start())
        if folder:
            self.edit.setText(folder)
            if self.folder is not None:
                self.folder.remember(folder)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Manifest", self._start(), "Manifests (*.csv *.tsv);;All files (*)"
        )
        if path:
            self.edit.setText(path)
            if self.folder is not None:
                self.folder.remember(path)

    def _check(self) -> None:
        text = self.text()
        self.problem = None if (self.optional and not text) else data_problem(text)
        self.edit.setStyleSheet("QLineEdit { border: 1px solid #c62828; }" if self.problem else "")
        self.edit.setToolTip(self.problem or "")

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(text)


class SettingsPanel(QWidget):
    """Data, benchmark and quantization settings; ``changed`` fires on every edit."""

    changed = Signal()
    message = Signal(str, str)
    """(text, level): a dataset path that cannot be used, said once per distinct path."""

    def __init__(
        self,
        settings: QSettings | None = None,
        folder: RememberedFolder | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._said = ""
        defaults = BenchSettings()
        quant = QuantSettings()
        self.dataset = PathField("DATA: a folder, a manifest, or demo", folder)
        self.dataset.setText("demo")
        self.limit = _spin(0, 100_000, 20, "all")
        self.limit.setToolTip("Evaluate the first N utterances (sorted order)")
        self.calib_n = _spin(1, 10_000, defaults.calib_n)
        self.calib_n.setToolTip("Calibration utterances for static entries")
        self.calib = PathField("same DATA, outside the evaluated utterances", folder, True)
        self.warmup = _spin(0, 100, defaults.warmup)
        self.repeats = _spin(1, 100, defaults.repeats)
        self.threads = _spin(0, max(1, os.cpu_count() or 1) * 2, 0, "torch default")
        self.normalizer = _combo(NORMALIZERS, defaults.normalizer)
        self.encoder_rtf = QCheckBox("also time the encoder alone")
        self.encoder_rtf.setChecked(defaults.encoder_rtf)
        self.cluster = QLineEdit()
        self.cluster.setPlaceholderText("this process")
        self.cluster.setClearButtonEnabled(True)
        self.cluster.setToolTip(
            "Empty: everything runs in this process. local:N starts a Ray cluster of N workers "
            "here; auto or ray://HOST:PORT joins a running one (needs speechquant[cluster]). "
            "Benchmark runs, sensitivity and plan search then transcribe on its workers; speed "
            "is timed in this process, as with speechquant --cluster"
        )
        self.engine = _combo(ENGINES, quant.engine)
        self.static_qconfig = _combo(setting_choices("static_qconfig"), quant.static_qconfig)
        self.dynamic_dtype = _combo(setting_choices("dynamic_dtype"), quant.dynamic_dtype)
        self.decoder_step = _combo(DECODER_STEPS, quant.decoder_step)
        self.decoder_step.setToolTip(
            "How the decoder steps after the first run: native (the searcher's own code) or "
            "scripted (one TorchScript module, checked against the searcher's own step when the "
            "plan is applied; Whisper greedy search only)"
        )

        data_box = QGroupBox("Data")
        data_form = QFormLayout(data_box)
        data_form.addRow("Dataset", self.dataset)
        data_form.addRow("Eval limit", self.limit)
        data_form.addRow("Calibration n", self.calib_n)
        data_form.addRow("Calibration data", self.calib)
        bench_box = QGroupBox("Benchmark")
        bench_form = QFormLayout(bench_box)
        bench_form.addRow("Warm-up", self.warmup)
        bench_form.addRow("Repeats", self.repeats)
        bench_form.addRow("Threads", self.threads)
        bench_form.addRow("Normalizer", self.normalizer)
        bench_form.addRow("", self.encoder_rtf)
        bench_form.addRow("Cluster", self.cluster)
        quant_box = QGroupBox("Quantization")
        quant_form = QFormLayout(quant_box)
        quant_form.addRow("Engine", self.engine)
        quant_form.addRow("Static qconfig", self.static_qconfig)
        quant_form.addRow("Dynamic dtype", self.dynamic_dtype)
        quant_form.addRow("Decoder step", self.decoder_step)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in (data_box, bench_box, quant_box):
            layout.addWidget(box)
        layout.addStretch(1)

        self.restore()
        for edit in (self.dataset.edit, self.calib.edit):
            edit.textChanged.connect(self._edited)
            edit.editingFinished.connect(self._say_problems)
        self.cluster.textChanged.connect(self._edited)
        for spin in self._spins().values():
            spin.valueChanged.connect(self._edited)
        for combo in self._combos().values():
            combo.currentTextChanged.connect(self._edited)
        self.encoder_rtf.toggled.connect(self._edited)

    def _spins(self) -> dict[str, QSpinBox]:
        return {
            "limit": self.limit,
            "calib_n": self.calib_n,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "threads": self.threads,
        }

    def _combos(self) -> dict[str, QComboBox]:
        return {
            "normalizer": self.normalizer,
            "engine": self.engine,
            "static_qconfig": self.static_qconfig,
            "dynamic_dtype": self.dynamic_dtype,
            "decoder_step": self.decoder_step,
        }

    def _edited(self, *_: Any) -> None:
        self.save()
        self.changed.emit()

    def _say_problems(self) -> None:
        for field in (self.dataset, self.calib):
            if field.problem and field.problem != self._said:
                self._said = field.problem
                self.message.emit(field.problem, "warning")

    # --- what the rest of the app reads ------------------------------------------------------
    def dataset_spec(self) -> str:
        return self.dataset.text()

    def bench_settings(self) -> BenchSettings:
        """Raises core's DataError for values core rejects."""
        return BenchSettings(
            limit=self.limit.value() or None,
            warmup=self.warmup.value(),
            repeats=self.repeats.value(),
            threads=self.threads.value() or None,
            normalizer=self.normalizer.currentText(),
            encoder_rtf=self.encoder_rtf.isChecked(),
            calib=self.calib.text() or None,
            calib_n=self.calib_n.value(),
        )

    def cluster_settings(self) -> ClusterSettings | None:
        """None when the Cluster field is empty; raises core's ClusterError for a bad address."""
        address = self.cluster.text().strip()
        return ClusterSettings(address) if address else None

    def quant_settings(self, base: QuantSettings | None = None) -> QuantSettings:
        targets = base.dynamic_targets if base is not None else QuantSettings().dynamic_targets
        return QuantSettings(
            engine=self.engine.currentText(),
            dynamic_dtype=self.dynamic_dtype.currentText(),
            dynamic_targets=targets,
            static_qconfig=self.static_qconfig.currentText(),
            decoder_step=self.decoder_step.currentText(),
        )

    def set_quant_settings(self, settings: QuantSettings) -> None:
        """Show a loaded plan's settings."""
        self.engine.setCurrentText(settings.engine)
        self.dynamic_dtype.setCurrentText(settings.dynamic_dtype)
        self.static_qconfig.setCurrentText(settings.static_qconfig)
        self.decoder_step.setCurrentText(settings.decoder_step)

    # --- persistence -----------------------------------------------------------------------
    def save(self) -> None:
        store = self._settings
        if store is None:
            return
        for key, field in (("dataset", self.dataset), ("calib", self.calib)):
            if field.problem is None:  # a path that cannot be used is not remembered
                store.setValue(PREFIX + key, field.text())
        for key, spin in self._spins().items():
            store.setValue(PREFIX + key, spin.value())
        for key, combo in self._combos().items():
            store.setValue(PREFIX + key, combo.currentText())
        store.setValue(PREFIX + "encoder_rtf", self.encoder_rtf.isChecked())
        store.setValue(PREFIX + "cluster", self.cluster.text())

    def restore(self) -> None:
        store = self._settings
        if store is None:
            return
        for key, field in (("dataset", self.dataset), ("calib", self.calib)):
            kept = field.text()
            field.setText(str(store.value(PREFIX + key, kept)))
            if field.problem is not None:  # gone since (or saved by an older version)
                field.setText(kept)
        for key, spin in self._spins().items():
            with contextlib.suppress(TypeError, ValueError):
                spin.setValue(int(str(store.value(PREFIX + key, spin.value()))))
        for key, combo in self._combos().items():
            value = str(store.value(PREFIX + key, combo.currentText()))
            if combo.findText(value) >= 0:
                combo.setCurrentText(value)
        checked = store.value(PREFIX + "encoder_rtf", self.encoder_rtf.isChecked())
        self.encoder_rtf.setChecked(str(checked).lower() in ("true", "1"))
        self.cluster.setText(str(store.value(PREFIX + "cluster", "") or ""))


def scrolled(panel: QWidget) -> QScrollArea:
    """``panel`` in a vertical scroll area, so a low window scrolls it instead of growing."""
    area = QScrollArea()
    area.setObjectName("settingsScroll")
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    bar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(panel.minimumSizeHint().width() + bar)
    return area
