"""Where models come from: a source field (built-in, folder or HF id), dialogs, recent sources."""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QFileDialog, QInputDialog, QLabel, QMenu, QToolBar

from speechquant.core.formatting import format_bytes
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.quantization.tree import ModuleTree
from speechquant.core.sources import BUILTINS

from .paths import RememberedFolder

MAX_RECENT = 8
RECENT_KEY = "recent_sources"


def model_info(model: LoadedModel, tree: ModuleTree) -> str:
    """The window's line about the open model: source, kind, language, modules, size."""
    nodes = sum(1 for _ in tree.nodes())
    kind = f"export of plan {model.plan.name}" if model.plan is not None else model.interface
    language = f" · language {model.language}" if model.language else ""
    size = format_bytes(tree.root.total_bytes)
    return f"{model.source} · {kind}{language} · {nodes} modules · {size}"


class ModelBar(QToolBar):
    """Emits ``sourceRequested(source)``; the window loads it and calls :meth:`remember`."""

    sourceRequested = Signal(str)

    def __init__(self, settings: QSettings, folder: RememberedFolder, parent: Any = None) -> None:
        super().__init__("Model", parent)
        self.settings = settings
        self.folder = folder
        self.setObjectName("modelBar")
        self.setMovable(False)
        self.source_box = QComboBox()
        self.source_box.setObjectName("sourceBox")
        self.source_box.setEditable(True)
        self.source_box.setMinimumContentsLength(42)
        self.source_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.source_box.textActivated.connect(self._picked)  # a pick from the list opens it
        edit = self.source_box.lineEdit()
        assert edit is not None
        edit.setPlaceholderText(
            "built-in, local SpeechBrain/export folder, or Hugging Face id (org/name)"
        )
        edit.returnPressed.connect(self._open_typed)
        self.addWidget(QLabel(" Model: "))
        self.addWidget(self.source_box)
        self.open_action = QAction("Open", self)
        self.open_action.setToolTip("Open the model named in the field")
        self.open_action.triggered.connect(self._open_typed)
        self.addAction(self.open_action)
        self.folder_action = QAction("Open model folder…", self)
        self.folder_action.setIconText("Folder…")
        self.folder_action.triggered.connect(self._open_folder)
        self.addAction(self.folder_action)
        self.hf_action = QAction("Open Hugging Face model…", self)
        self.hf_action.triggered.connect(self._open_hf)
        self.builtins_menu = QMenu("Open built-in model", parent)
        for name in BUILTINS:
            self.builtins_menu.addAction(name, partial(self.sourceRequested.emit, name))
        self.recent_menu = QMenu("Recent models", parent)
        self._refill()

    def recent_sources(self) -> list[str]:
        value: Any = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in value or []]

    def remember(self, source: str) -> None:
        recent = [source] + [s for s in self.recent_sources() if s != source]
        self.settings.setValue(RECENT_KEY, recent[:MAX_RECENT])
        self._refill()
        self.set_source(source)

    def set_source(self, source: str) -> None:
        self.source_box.setCurrentText(source)

    def _refill(self) -> None:
        recent = self.recent_sources()
        self.recent_menu.clear()
        for source in recent:
            self.recent_menu.addAction(source, partial(self.sourceRequested.emit, source))
        self.recent_menu.setEnabled(bool(recent))
        typed = self.source_box.currentText()
        self.source_box.clear()
        self.source_box.addItems(recent + [b for b in BUILTINS if b not in recent])
        self.source_box.setCurrentText(typed)

    def _open_typed(self) -> None:
        text = self.source_box.currentText().strip()
        if text:
            self.sourceRequested.emit(text)

    def _picked(self, text: str) -> None:
        if text.strip():
            self.sourceRequested.emit(text.strip())

    def _open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "SpeechBrain model or export folder", self.folder.get()
        )
        if folder:
            self.folder.remember(folder)
            self.sourceRequested.emit(folder)

    def _open_hf(self) -> None:
        text, ok = QInputDialog.getText(self, "Hugging Face model", "Model id (org/name):")
        if ok and text.strip():
            self.sourceRequested.emit(text.strip())
