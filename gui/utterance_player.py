"""The Utterances tab's play bar: hear the utterance being scored, from the DATA the run used.

The output device is looked for (PortAudio loaded) only when the tab is first shown or Play is
pressed; without one, Play is disabled and its tooltip says why.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from speechquant.core.data.datasets import Dataset, open_dataset
from speechquant.core.errors import AudioDeviceError, SpeechquantError
from speechquant.core.live.playback import AudioPlayer, UtteranceAudio, open_player, utterance_audio

PlayerFactory = Callable[[], AudioPlayer]


class UtterancePlayer(QWidget):
    """Utterance: [id ▾] ▶ Play ■ Stop — and a line saying what is playing or what went wrong."""

    checked = Signal()
    """The output device was looked for (:meth:`ensure_player`); Play may have changed."""

    def __init__(
        self,
        player_factory: PlayerFactory = open_player,
        open_data: Callable[[str], Dataset] = open_dataset,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.player_factory = player_factory
        self.open_data = open_data
        self.player: AudioPlayer | None = None
        self.player_problem: str | None = None
        self._checked = False
        self.data: str | None = None
        self.run_id: int | None = None
        self._datasets: dict[str, Dataset] = {}
        self.utterance = QComboBox()
        self.utterance.setObjectName("utteranceBox")
        self.utterance.setMinimumContentsLength(16)
        self.utterance.currentIndexChanged.connect(lambda _i: self._update())
        self.play_button = QPushButton("▶ Play")
        self.play_button.setObjectName("playButton")
        self.play_button.clicked.connect(lambda: self.play())
        self.stop_button = QPushButton("■ Stop")
        self.stop_button.clicked.connect(self.stop)
        self.status = QLabel("")
        self.status.setObjectName("playStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Utterance:"))
        row.addWidget(self.utterance)
        row.addWidget(self.play_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.status, 1)
        self._update()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.ensure_player()

    def ensure_player(self) -> bool:
        """Look for the output device once; True when there is a player."""
        if not self._checked:
            self._checked = True
            try:
                self.player = self.player_factory()
            except AudioDeviceError as exc:
                self.player, self.player_problem = None, str(exc)
            self._update()
            self.checked.emit()
        return self.player is not None

    def set_utterances(self, ids: list[str], data: str | None, run_id: int | None) -> None:
        """The page's utterances, the DATA they come from and the run that recorded it."""
        keep = self.utterance.currentText()
        self.data, self.run_id = data, run_id
        self.utterance.blockSignals(True)
        self.utterance.clear()
        self.utterance.addItems(ids)
        if keep in ids:
            self.utterance.setCurrentText(keep)
        self.utterance.blockSignals(False)
        self._update()

    def unavailable(self) -> str | None:
        """Why Play cannot play now (None: it can)."""
        if self._checked and self.player is None:
            return f"no sound: {self.player_problem}"
        if not self.utterance.count():
            return "no utterance to play: these runs hold none"
        if not self.data:
            return (
                f"run #{self.run_id} did not record the DATA it evaluated, so its audio cannot "
                "be found; run the benchmark again to hear its utterances"
            )
        return None

    @property
    def playable(self) -> bool:
        return self.unavailable() is None

    def _update(self) -> None:
        problem = self.unavailable()
        self.play_button.setEnabled(problem is None)
        current = self.utterance.currentText()
        self.play_button.setToolTip(problem or f"play {current} from {self.data}")
        self.stop_button.setEnabled(self.player is not None)

    def say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #c62828" if error else "color: #444")
        self.status.setText(text)
        self.status.setToolTip(text)

    def play(self, utt_id: str | None = None) -> UtteranceAudio | None:
        """Play ``utt_id`` (default: the chosen one); returns what was played, None on failure."""
        self.ensure_player()
        if utt_id is not None:
            self.utterance.setCurrentText(utt_id)
        problem = self.unavailable()
        if problem is not None or self.player is None or self.data is None:
            self.say(problem or "nothing to play", error=True)
            return None
        chosen = self.utterance.currentText()
        try:
            if self.data not in self._datasets:
                self._datasets[self.data] = self.open_data(self.data)
            audio = utterance_audio(self._datasets[self.data], chosen)
            self.player.play(audio.samples, audio.sample_rate)
        except SpeechquantError as exc:
            self.say(str(exc), error=True)
            return None
        self.say(f"playing {chosen} ({audio.seconds:.1f} s) from {audio.path}")
        return audio

    def stop(self) -> None:
        if self.player is not None:
            self.player.stop()
            self.say("stopped")
