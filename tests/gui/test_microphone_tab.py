"""The Microphone tab: file-backed sources (no hardware), and the real virtual microphone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import AudioDeviceError
from speechquant.core.live.file_source import ArraySource
from speechquant.gui.job_slot import JobSlot
from speechquant.gui.microphone_tab import MicrophoneTab
from speechquant.gui.run_context import ContextSource
from speechquant.gui.settings_panel import SettingsPanel
from speechquant.gui.tree_model import ModuleTreeModel

from ..audio_fixtures import recall
from ..helpers import fixed_waves

RATE = 16000
WAIT = 120_000


def stream() -> np.ndarray:
    quiet = np.zeros(RATE // 2, np.float32)
    a, b = (w.numpy().astype(np.float32) for w in fixed_waves(2, seconds=1.0))
    return np.concatenate([quiet, a, quiet, quiet, b, quiet, quiet])


def choose_test_input(tab: MicrophoneTab) -> None:
    tab.device.insertItem(0, "test input", 0)
    tab.device.setCurrentIndex(0)


def record(qtbot, tab: MicrophoneTab, source) -> None:
    """Record from ``source`` as if it were the chosen input (no hardware needed)."""
    tab.source_factory = lambda device, rate: source
    choose_test_input(tab)
    with qtbot.waitSignal(tab.recordingStarted, timeout=WAIT):
        assert tab.start_recording()


def test_tab_transcribes_with_float_and_quantized_models(window, qtbot):
    assert window.apply_preset("all-dynamic")
    tab = window.microphone
    window.tabs.setCurrentWidget(tab)
    record(qtbot, tab, ArraySource(stream(), RATE))
    with qtbot.waitSignal(tab.idle, timeout=WAIT):  # the file ends; both segments transcribed
        pass
    assert not tab.busy and tab.record_button.text() == "● Record"
    assert [r.index for r in tab.results] == [0, 1]
    for name in ("float", "quantized"):
        text = tab.panes[name].toPlainText()
        assert text.count("latency") == 2 and text.count("RTF") == 2, text
    assert "all-dynamic" in tab.pane_boxes["quantized"].title()
    assert tab.recording is not None and tab.recording.samples == stream().size
    tab.dataset.setCurrentText("gui-take")
    tab.reference.setText("hello there")
    saved = tab.save_recording()
    assert saved is not None and Path(saved).is_file()
    dataset = open_dataset(Path(saved).parent)
    assert [u.ref for u in dataset] == ["hello there"] and tab.reference.text() == ""
    assert "saved" in tab.status.text()


def test_float_plan_runs_the_float_model_only(window, qtbot):
    tab = window.microphone
    record(qtbot, tab, ArraySource(stream(), RATE))
    with qtbot.waitSignal(tab.idle, timeout=WAIT):
        pass
    assert all([o.name for o in r.outputs] == ["float"] for r in tab.results)
    assert "quantizes nothing" in tab.panes["quantized"].toPlainText()


def test_no_device_is_one_line_and_the_window_keeps_working(window, qtbot):
    tab = window.microphone

    def no_device(device, rate):
        raise AudioDeviceError("no audio input device found; connect a microphone")

    tab.source_factory = no_device
    choose_test_input(tab)
    assert not tab.start_recording()
    assert tab.status.text() == "no audio input device found; connect a microphone"
    assert not tab.busy and tab.record_button.isEnabled()
    assert window.apply_preset("all-dynamic")  # the rest of the app is unaffected


def test_device_lost_mid_recording_keeps_the_recording(window, qtbot):
    tab = window.microphone
    record(qtbot, tab, ArraySource(stream(), RATE, fail_after=2.2))
    with qtbot.waitSignal(tab.idle, timeout=WAIT):
        pass
    assert "stopped delivering audio" in tab.status.text()
    assert "\n" not in tab.status.text()
    assert tab.recording is not None and tab.recording.duration == pytest.approx(2.2)
    assert tab.results and tab.save_button.isEnabled()
    tab.reference.setText("partial take")
    assert tab.save_recording() is not None


def test_push_to_talk_and_level_meter(window, qtbot):
    tab = window.microphone
    tab.mode.setCurrentIndex(tab.mode.findData("push-to-talk"))
    audio = stream()
    record(qtbot, tab, ArraySource(audio, RATE, realtime=True))
    assert tab.talk_button.isEnabled() and not tab.mode.isEnabled()
    qtbot.waitUntil(lambda: tab.recording.duration > 0.3, timeout=WAIT)
    tab.talk_pressed()
    qtbot.waitUntil(lambda: tab.recording.duration > 0.9, timeout=WAIT)  # the tone is on
    assert tab.meter.value() > 30 and "dBFS" in tab.meter.format()
    assert np.abs(tab.waveform.curve.getData()[1]).max() > 0.1
    qtbot.waitUntil(lambda: tab.recording.duration > 1.6, timeout=WAIT)
    tab.talk_released()
    qtbot.waitUntil(lambda: len(tab.results) == 1, timeout=WAIT)
    with qtbot.waitSignal(tab.idle, timeout=WAIT):
        tab.stop_recording()
    assert len(tab.results) == 1 and tab.results[0].reason == "released"


def test_model_needed_before_recording(qtbot, history):
    contexts = ContextSource(lambda: None, ModuleTreeModel(), SettingsPanel(), history)
    tab = MicrophoneTab(JobSlot(), contexts)
    qtbot.addWidget(tab)
    tab.start_recording()
    assert tab.status.text() == "open a model before recording" and not tab.busy


@pytest.mark.audio
@pytest.mark.timeout(300, method="thread")
def test_tab_transcribes_the_virtual_microphone(
    window, qtbot, virtual_mic, spoken_sentence, demo_whisper
):
    text, wav = spoken_sentence
    window.set_model(demo_whisper)
    assert window.apply_preset("all-dynamic")
    tab = window.microphone
    window.tabs.setCurrentWidget(tab)  # lists the devices
    tab.refresh_devices()
    assert tab.select_device("pulse"), [tab.device.itemText(i) for i in range(tab.device.count())]
    with qtbot.waitSignal(tab.modelsReady, timeout=WAIT):
        tab.record_button.click()
    qtbot.waitUntil(lambda: tab.recording is not None and tab.recording.samples > 0, timeout=WAIT)
    player = virtual_mic.play(wav, delay=0.3)
    qtbot.waitUntil(lambda: len(tab.results) >= 1, timeout=WAIT)
    assert player.wait(30) == 0
    with qtbot.waitSignal(tab.idle, timeout=WAIT):
        tab.stop_recording()
    heard = tab.panes["float"].toPlainText()
    assert recall(text, heard) >= 0.75, heard
    assert recall(text, tab.panes["quantized"].toPlainText()) >= 0.6
    assert "latency" in heard and tab.status.text().startswith("stopped after")


def test_without_a_microphone_a_file_is_the_input(window, qtbot, tiny_data, monkeypatch):
    from speechquant.gui import input_picker
    from speechquant.gui.microphone_tab import default_source

    monkeypatch.setattr(input_picker, "list_input_devices", lambda: [])
    tab = window.microphone
    tab.refresh_devices()
    items = [tab.device.itemText(i) for i in range(tab.device.count())]
    assert items == ["Audio file…"]  # no "Default input" without a device
    assert not tab.record_button.isEnabled() and "no microphone found" in tab.status.text()
    wav = tiny_data / "utt0.wav"
    tab.use_file(str(wav))
    assert tab.record_button.isEnabled() and tab.device.currentText() == "file: utt0.wav"
    assert default_source(tab.device.currentData(), RATE).name == str(wav)
    with qtbot.waitSignal(tab.idle, timeout=WAIT):  # the file plays through and ends
        assert tab.start_recording()
    assert tab.recording is not None and tab.recording.duration == pytest.approx(1.0, abs=0.05)
    tab.refresh_devices()  # a chosen file survives a refresh
    assert "file: utt0.wav" in [tab.device.itemText(i) for i in range(tab.device.count())]
