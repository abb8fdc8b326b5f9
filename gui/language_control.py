"""The Language box beside the Model field: the decoder language of a multilingual Whisper.

It lists the languages core says the open model takes (:attr:`LoadedModel.languages`), shows the
model's current one and sets another through :meth:`LoadedModel.set_language`; the choice is
remembered per source in the window's QSettings and set again when that source is opened.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QToolBar

from speechquant.core.errors import SpeechquantError
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.model.whisper_language import language_name

from .job_slot import JobSlot

LANGUAGES_KEY = "model_languages"
SEPARATOR = " · "


def item_text(code: str) -> str:
    """How the box lists a language: ``de · german``."""
    return f"{code}{SEPARATOR}{language_name(code)}"


def typed_code(text: str) -> str:
    """The code of a listed item (``de · german`` -> ``de``) or of a typed code."""
    return text.split(SEPARATOR, 1)[0].strip().lower()


class LanguageControl(QObject):
    """Emits ``languageChanged(model)`` after the user's choice was set on the open model, and
    ``message(text, level)`` for the log."""

    languageChanged = Signal(object)
    message = Signal(str, str)

    def __init__(self, settings: QSettings, slot: JobSlot, parent: Any = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.slot = slot
        self.model: LoadedModel | None = None
        self.codes: list[str] = []
        self.label = QLabel(" Language: ")
        self.box = QComboBox()
        self.box.setObjectName("languageBox")
        self.box.setEditable(True)
        self.box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.box.setMinimumContentsLength(12)
        self.box.activated.connect(lambda index: self.apply(str(self.box.itemData(index))))
        edit = self.box.lineEdit()
        assert edit is not None
        edit.returnPressed.connect(lambda: self.apply(typed_code(self.box.currentText())))
        slot.busyChanged.connect(lambda _busy: self._update())
        self._update()

    def add_to(self, bar: QToolBar) -> None:
        bar.addWidget(self.label)
        bar.addWidget(self.box)

    # --- remembered choices ----------------------------------------------------------------
    def remembered(self) -> dict[str, str]:
        """The language chosen per source (only the ones set through this box)."""
        try:
            value = json.loads(str(self.settings.value(LANGUAGES_KEY, "{}") or "{}"))
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def _remember(self, source: str, code: str | None) -> None:
        chosen = self.remembered()
        if code is None:
            chosen.pop(source, None)
        else:
            chosen[source] = code
        self.settings.setValue(LANGUAGES_KEY, json.dumps(chosen, sort_keys=True))

    # --- the open model --------------------------------------------------------------------
    def model_changed(self, model: LoadedModel) -> None:
        """Show ``model``'s languages, after setting the language remembered for its source."""
        self.model = model
        self.codes = model.languages
        wanted = self.remembered().get(model.source)
        if wanted is not None and wanted != model.language and self.codes != [wanted]:
            try:
                model.set_language(wanted)
            except SpeechquantError as exc:
                self._remember(model.source, None)
                self.message.emit(
                    f"not setting the language remembered for {model.source}: {exc}", "warning"
                )
            else:
                self.message.emit(
                    f"{model.source}: language {wanted} (the one last chosen for it)", "info"
                )
        self._fill()

    def apply(self, text: str) -> bool:
        """Set language ``text`` (a code) on the open model; False (and one log line, the model
        unchanged) if it cannot take it."""
        model = self.model
        code = typed_code(text)
        if model is None:
            self.message.emit("open a model before choosing its language", "error")
            return False
        if code == model.language or self.codes == [code]:
            self._show_current()
            return True  # it transcribes that language already
        if self.slot.busy:
            self.message.emit(
                f"{self.slot.what or 'a job'} is running; change the language when it is done",
                "error",
            )
            self._show_current()
            return False
        try:
            model.set_language(code)
        except SpeechquantError as exc:
            self.message.emit(str(exc), "error")
            self._show_current()
            return False
        self._remember(model.source, model.language)
        self._show_current()
        self.message.emit(f"{model.source}: language {model.language}", "info")
        self.languageChanged.emit(model)
        return True

    def _fill(self) -> None:
        self.box.blockSignals(True)
        self.box.clear()
        for code in self.codes:
            self.box.addItem(item_text(code), code)
        self.box.blockSignals(False)
        self._show_current()
        self._update()

    def _show_current(self) -> None:
        model = self.model
        current = model.language if model is not None else None
        index = self.box.findData(current) if current else (0 if self.box.count() == 1 else -1)
        self.box.blockSignals(True)
        self.box.setCurrentIndex(index)
        if index < 0:
            self.box.setEditText("")
        self.box.blockSignals(False)

    def _update(self) -> None:
        model, codes = self.model, self.codes
        self.box.setEnabled(len(codes) > 1 and not self.slot.busy)
        if model is None:
            tip = "open a model; a multilingual Whisper takes a language"
        elif len(codes) > 1:
            tip = (
                f"the language {model.source} transcribes ({len(codes)} it knows); pick or "
                "type a code, remembered for this model"
            )
        elif codes:
            tip = f"{model.source} is an English-only Whisper model; it takes no other language"
        else:
            tip = f"{model.source} takes no language (only a multilingual Whisper does)"
        self.box.setToolTip(tip)
