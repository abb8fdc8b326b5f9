"""Utterances tab ▸ Play: the utterance being scored reaches the audio output (a fake here)."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from PySide6.QtCore import QUrl

from speechquant.core.errors import AudioDeviceError
from speechquant.gui.utterances_view import UtterancesView

from .test_window import fake_result

SOURCE = "replica:wav2vec2-tiny"


class FakePlayer:
    def __init__(self) -> None:
        self.played: list[tuple[np.ndarray, int]] = []
        self.stops = 0

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        self.played.append((samples, sample_rate))

    def stop(self) -> None:
        self.stops += 1


def _runs(history, data):
    result = fake_result(SOURCE, None, 10.0, 0.4, 4000, ["hello world", "the cat sat"])
    for i, utt in enumerate(result["utterances"]):
        utt["id"] = f"utt{i}"
    settings = {"data": str(data)} if data else {}
    return history.add_run(result, kind="baseline", settings=settings)


def _view(qtbot, history, factory):
    view = UtterancesView(history, player_factory=factory)
    qtbot.addWidget(view)
    view.load_runs(SOURCE)
    return view


def test_play_sends_the_scored_utterance_to_the_player(qtbot, history, tiny_data):
    _runs(history, tiny_data)
    fake = FakePlayer()
    view = _view(qtbot, history, lambda: fake)
    bar = view.playback
    view.show()  # the output device is looked for when the tab is first shown
    assert bar.player is fake and bar.play_button.isEnabled()
    assert [bar.utterance.itemText(i) for i in range(bar.utterance.count())] == ["utt0", "utt1"]
    assert "▶ play" in view.browser.toPlainText()
    bar.utterance.setCurrentText("utt1")
    assert "play utt1 from" in bar.play_button.toolTip()
    bar.play_button.click()
    samples, rate = fake.played[-1]
    expected, file_rate = sf.read(tiny_data / "utt1.wav", dtype="float32")
    assert rate == file_rate == 16000 and np.array_equal(samples, expected)
    assert bar.status.text().startswith("playing utt1 (1.0 s) from ")
    assert bar.status.text().endswith("utt1.wav")
    view.browser.anchorClicked.emit(QUrl("play:0"))  # the ▶ link of the first utterance
    samples, _ = fake.played[-1]
    assert np.array_equal(samples, sf.read(tiny_data / "utt0.wav", dtype="float32")[0])
    assert bar.utterance.currentText() == "utt0"
    bar.stop_button.click()
    assert fake.stops == 1


def test_without_an_output_device_play_is_disabled_and_says_why(qtbot, history, tiny_data):
    _runs(history, tiny_data)

    def no_device():
        raise AudioDeviceError("no audio output device found; connect speakers or headphones")

    view = _view(qtbot, history, no_device)
    view.show()
    bar = view.playback
    assert not bar.play_button.isEnabled()
    assert bar.play_button.toolTip() == (
        "no sound: no audio output device found; connect speakers or headphones"
    )
    assert "▶ play" not in view.browser.toPlainText()
    assert bar.play() is None and "no audio output device" in bar.status.text()


def test_a_run_without_its_data_cannot_be_heard(qtbot, history):
    run = _runs(history, None)
    fake = FakePlayer()
    view = _view(qtbot, history, lambda: fake)
    view.show()
    bar = view.playback
    assert not bar.play_button.isEnabled()
    assert f"run #{run} did not record the DATA" in bar.play_button.toolTip()
    assert fake.played == []


def test_a_moved_dataset_is_reported_not_played(qtbot, history, tmp_path, tiny_data):
    import shutil

    data = tmp_path / "moved"
    shutil.copytree(tiny_data, data)
    _runs(history, data)
    fake = FakePlayer()
    view = _view(qtbot, history, lambda: fake)
    view.show()
    (data / "utt0.wav").unlink()
    assert view.playback.play("utt0") is None
    assert "utt0" in view.playback.status.text() and fake.played == []
