"""The Microphone tab's input list: the input devices PortAudio offers, audio files chosen as
inputs, and "Audio file…" to choose one (the only choice on a machine without a microphone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from speechquant.core.errors import AudioDeviceError
from speechquant.core.live.microphone import list_input_devices

from .paths import RememberedFolder

FILE_INPUT = "file"
"""Item data of the "Audio file…" entry; a chosen file is ``(FILE_INPUT, path)``."""
CHOOSE_FILE = "Audio file…"


class InputPicker(QComboBox):
    """Devices (``Default input`` only when there is one), files, then ``Audio file…``."""

    def __init__(
        self, folder: RememberedFolder | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.folder = folder
        self.devices_found = 0
        self.setObjectName("inputBox")
        self.setMinimumWidth(260)
        self.addItem(CHOOSE_FILE, FILE_INPUT)
        self.activated.connect(self._picked)

    def ready(self) -> bool:
        """True when the current entry is a device or a file (not the "Audio file…" prompt)."""
        data = self.currentData()
        if data == FILE_INPUT:
            return False
        return data is not None or self.devices_found > 0

    def refresh(self) -> str | None:
        """List the devices again (files chosen before stay); returns what to tell the user."""
        keep = self.currentData()
        files: list[tuple[str, Any]] = [
            (self.itemText(i), self.itemData(i))
            for i in range(self.count())
            if isinstance(self.itemData(i), tuple)
        ]
        self.clear()
        problem = None
        try:
            devices = list_input_devices()
        except AudioDeviceError as exc:
            devices = []
            problem = f"{exc}; choose {CHOOSE_FILE} as the input instead"
        else:
            if not devices:
                problem = (
                    f"no microphone found; choose {CHOOSE_FILE} as the input to transcribe a "
                    "WAV/FLAC file instead"
                )
        self.devices_found = len(devices)
        if devices:
            self.addItem("Default input", None)
        for device in devices:
            self.addItem(device.label(), device.index)
        for text, data in files:
            self.addItem(text, data)
        self.addItem(CHOOSE_FILE, FILE_INPUT)
        index = self.findData(keep)
        self.setCurrentIndex(index if index >= 0 else 0)
        return problem

    def use_file(self, path: str) -> None:
        data = (FILE_INPUT, path)
        row = self.findData(data)
        if row < 0:
            row = self.count() - 1  # before "Audio file…"
            self.insertItem(row, f"file: {Path(path).name}", data)
            self.setItemData(row, path, Qt.ItemDataRole.ToolTipRole)
        self.setCurrentIndex(row)
        if self.folder is not None:
            self.folder.remember(path)

    def select(self, name: str) -> bool:
        """Choose the first device whose label contains ``name``."""
        for i in range(self.count()):
            data = self.itemData(i)
            if data is not None and not isinstance(data, (str, tuple)) and name in self.itemText(i):
                self.setCurrentIndex(i)
                return True
        return False

    def _picked(self, _row: int) -> None:
        if self.currentData() != FILE_INPUT:
            return
        start = self.folder.get() if self.folder is not None else ""
        path, _ = QFileDialog.getOpenFileName(
            self, "Audio file to transcribe", start, "Audio (*.wav *.flac *.ogg *.mp3)"
        )
        if path:
            self.use_file(path)
