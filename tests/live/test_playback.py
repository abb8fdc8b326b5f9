"""Audio output (live.playback): an utterance's audio from its DATA, the device list, the player."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import AudioDeviceError, DataError
from speechquant.core.live import devices as audio_devices
from speechquant.core.live import playback
from speechquant.core.live.devices import AudioDevice
from speechquant.core.live.playback import (
    SoundDevicePlayer,
    list_output_devices,
    open_player,
    utterance_audio,
)


@pytest.fixture
def folder(tmp_path):
    for i, rate in enumerate((8000, 16000)):
        wave = (0.3 * np.sin(2 * np.pi * 300 * np.arange(rate) / rate)).astype("float32")
        sf.write(tmp_path / f"u{i}.wav", wave if i else np.stack([wave, wave], 1), rate)
        (tmp_path / f"u{i}.txt").write_text("hello there\n")
    return tmp_path


def test_utterance_audio_is_the_file_at_its_own_rate(folder):
    dataset = open_dataset(folder)
    stereo = utterance_audio(dataset, "u0")
    assert stereo.sample_rate == 8000 and stereo.samples.shape == (8000,)
    assert stereo.path == folder / "u0.wav" and stereo.seconds == pytest.approx(1.0)
    mono = utterance_audio(dataset, "u1")
    expected, rate = sf.read(folder / "u1.wav", dtype="float32")
    assert rate == 16000 and np.array_equal(mono.samples, expected)
    with pytest.raises(DataError, match="has no utterance 'gone'"):
        utterance_audio(dataset, "gone")
    (folder / "u1.wav").write_bytes(b"RIFF broken")
    with pytest.raises(DataError, match="cannot read audio"):
        utterance_audio(dataset, "u1")


class FakeSoundDevice:
    """The part of ``sounddevice`` playback uses; ``rates`` are the ones the device takes."""

    class PortAudioError(Exception):
        pass

    def __init__(self, devices, default_out=1, rates=(48000,)):
        self.devices = devices
        self.default = type("Default", (), {"device": [0, default_out]})()
        self.rates = rates
        self.played: list[tuple[np.ndarray, int, int]] = []
        self.stopped = 0

    def query_devices(self):
        return self.devices

    def query_hostapis(self):
        return [{"name": "ALSA", "default_output_device": 1}]

    def check_output_settings(self, device, channels, samplerate):
        if samplerate not in self.rates:
            raise self.PortAudioError("Invalid sample rate")

    def play(self, samples, rate, device):
        self.played.append((samples, rate, device))

    def stop(self):
        self.stopped += 1


def _device(index, name, inputs, outputs):
    return {
        "index": index,
        "name": name,
        "hostapi": 0,
        "max_input_channels": inputs,
        "max_output_channels": outputs,
        "default_samplerate": 48000.0,
    }


def _fake_portaudio(monkeypatch, fake) -> None:
    """``fake`` stands in for sounddevice wherever the output path imports it."""
    for module in (playback, audio_devices):
        monkeypatch.setattr(module, "import_sounddevice", lambda what="input": fake)


def test_output_devices_and_the_default_one(monkeypatch):
    fake = FakeSoundDevice([_device(0, "mic", 2, 0), _device(1, "speakers", 0, 2)])
    _fake_portaudio(monkeypatch, fake)
    devices = list_output_devices()
    assert [(d.name, d.is_default) for d in devices] == [("speakers", True)]
    player = open_player()
    assert player.device.name == "speakers"
    wave = np.zeros(16000, dtype=np.float32)
    player.play(wave, 16000)  # the device refuses 16 kHz: resampled to its 48 kHz
    samples, rate, device = fake.played[-1]
    assert rate == 48000 and device == 1 and samples.size == pytest.approx(48000, abs=2)
    fake.rates = (16000,)
    player.play(wave, 16000)
    assert fake.played[-1][1] == 16000 and fake.played[-1][0].size == 16000
    player.stop()
    assert fake.stopped == 1


def test_one_device_list_serves_both_directions(monkeypatch):
    fake = FakeSoundDevice([_device(0, "mic", 2, 0), _device(1, "speakers", 0, 2)])
    _fake_portaudio(monkeypatch, fake)
    (mic,) = audio_devices.list_devices("input")
    (speakers,) = audio_devices.list_devices("output")
    assert (mic.direction, mic.channels, mic.is_default) == ("input", 2, True)
    assert (speakers.direction, speakers.channels, speakers.is_default) == ("output", 2, True)
    assert mic.label() == "0: mic (default) — ALSA, 48000 Hz"
    assert speakers.label() == "1: speakers (default) — ALSA"


def test_no_output_device_says_why(monkeypatch):
    fake = FakeSoundDevice([_device(0, "mic", 2, 0)])
    _fake_portaudio(monkeypatch, fake)
    with pytest.raises(AudioDeviceError, match="no audio output device found; connect speakers"):
        open_player()


def test_a_failing_device_is_one_line(monkeypatch):
    fake = FakeSoundDevice([_device(1, "speakers", 0, 2)], rates=(16000,))

    def broken(*_args, **_kw):
        raise fake.PortAudioError("Device unavailable")

    fake.play = broken  # type: ignore[method-assign]
    _fake_portaudio(monkeypatch, fake)
    player = SoundDevicePlayer(AudioDevice("output", 1, "speakers", "ALSA", 2, 48000, True))
    with pytest.raises(AudioDeviceError, match="cannot play on 1: speakers .*Device unavailable"):
        player.play(np.zeros(10, dtype=np.float32), 16000)


@pytest.mark.audio
@pytest.mark.timeout(120, method="thread")
def test_played_audio_reaches_the_virtual_sink(virtual_mic):
    """The real output path: PortAudio's ``pulse`` device -> the private server's null sink,
    heard back through the virtual microphone that listens to it."""
    from speechquant.core.live.microphone import MicrophoneSource

    device = next(d for d in list_output_devices() if d.name == "pulse")
    player = SoundDevicePlayer(device)
    rate = 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.float32)
    with MicrophoneSource("pulse", sample_rate=rate) as mic:
        time.sleep(0.5)
        mic.drain()
        player.play(tone, rate)
        time.sleep(2.5)
        heard = np.concatenate(mic.drain() or [np.zeros(1, dtype=np.float32)])
    player.stop()
    assert heard.size > rate
    assert float(np.sqrt(np.mean(heard**2))) > 0.05
