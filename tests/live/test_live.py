"""Live transcription without audio hardware: segmenter, sources, the loop, recordings, the CLI."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf

from speechquant.core.cli.main import main
from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import AudioDeviceError, DataError, SpeechquantError
from speechquant.core.live import microphone
from speechquant.core.live.devices import AudioDevice
from speechquant.core.live.file_source import ArraySource, FileSource
from speechquant.core.live.microphone import (
    AudioSource,
    MicrophoneSource,
    resolve_device,
)
from speechquant.core.live.recording import Recording, peak_envelope, save_to_dataset, user_datasets
from speechquant.core.live.segmenter import Segmenter, SegmenterSettings, level_db
from speechquant.core.live.transcription import (
    FLOAT,
    QUANTIZED,
    SegmentTranscriber,
    listen,
    live_models,
)
from speechquant.core.quantization.plan import Plan

from ..helpers import fixed_waves

RATE = 16000


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def tone(seconds: float, seed: int = 0) -> np.ndarray:
    return fixed_waves(1, seconds=seconds, seed=seed)[0].numpy().astype(np.float32)


def stream() -> np.ndarray:
    """Two 'utterances' (1.0 s and 1.2 s) between silences; 4.5 s in all."""
    return np.concatenate([silence(0.5), tone(1.0), silence(1.0), tone(1.2, 1), silence(0.8)])


def segments_of(audio: np.ndarray, settings: SegmenterSettings | None = None, block: int = 700):
    segmenter = Segmenter(RATE, settings)
    found = []
    for i in range(0, audio.size, block):  # block size unrelated to the frame size
        found += segmenter.push(audio[i : i + block])
    return found + segmenter.flush()


def test_continuous_mode_cuts_at_silences_with_pre_roll():
    found = segments_of(stream())
    assert [s.index for s in found] == [0, 1]
    assert [s.reason for s in found] == ["silence", "silence"]
    first, second = found
    assert first.start == pytest.approx(0.5 - 0.25, abs=0.031)
    assert second.start == pytest.approx(2.5 - 0.25, abs=0.031)
    # speech plus pre-roll plus a little trailing silence, never the whole gap
    assert 1.2 <= first.duration <= 1.6
    assert 1.4 <= second.duration <= 1.8
    assert first.sample_rate == RATE and first.audio.dtype == np.float32
    assert np.allclose(first.audio, stream()[int(first.start * RATE) :][: first.audio.size])


def test_min_and_max_segment_length():
    click = np.concatenate([silence(0.5), tone(0.1), silence(1.0)])
    assert segments_of(click) == []  # shorter than min_speech: not an utterance
    long = np.concatenate([silence(0.3), tone(2.5), silence(1.0)])
    found = segments_of(long, SegmenterSettings(max_segment=1.2))
    assert [s.reason for s in found] == ["max-length", "max-length", "silence"]
    assert all(s.duration <= 1.2 + 1e-9 for s in found)
    assert sum(s.duration for s in found) == pytest.approx(2.5 + 0.25 + 0.25, abs=0.1)


def test_flush_closes_an_open_segment():
    found = segments_of(np.concatenate([silence(0.3), tone(1.0)]))
    assert [s.reason for s in found] == ["end"]
    assert found[0].end == pytest.approx(1.3, abs=1e-6)


def test_push_to_talk_keeps_what_is_said_while_held():
    segmenter = Segmenter(RATE, SegmenterSettings(mode="push-to-talk"))
    assert segmenter.push(tone(1.0)) == []  # not held: ignored
    segmenter.press()
    segmenter.push(silence(0.2))
    segmenter.push(tone(0.8))
    (segment,) = segmenter.release()
    assert segment.reason == "released"
    assert segment.start == pytest.approx(1.0, abs=0.031)  # to the frame
    assert segment.duration == pytest.approx(1.0, abs=0.031)
    segmenter.press()
    segmenter.push(tone(0.2))
    assert segmenter.release() == []  # shorter than min_segment


def test_noise_floor_adapts_to_a_noisy_room():
    rng = np.random.default_rng(1)
    room = (0.02 * rng.standard_normal(int(12 * RATE))).astype(np.float32)  # about -34 dBFS
    speech = room.copy()
    speech[6 * RATE : 8 * RATE] += 10 * tone(2.0)
    found = segments_of(speech)
    # the room alone must not count as speech forever: the loud part is its own segment
    assert any(5.5 <= s.start <= 6.1 and s.duration < 4 for s in found), [
        (s.start, s.duration) for s in found
    ]


def test_segmenter_settings_are_validated():
    with pytest.raises(SpeechquantError, match="mode"):
        SegmenterSettings(mode="always")
    with pytest.raises(SpeechquantError, match="max_segment"):
        SegmenterSettings(min_segment=3.0, max_segment=2.0)


def test_level_and_peak_envelope():
    assert level_db(np.zeros(10, np.float32)) == -120.0
    assert level_db(np.ones(10, np.float32)) == pytest.approx(0.0)
    audio = np.zeros(1000, np.float32)
    audio[123], audio[777] = 0.9, -0.8
    envelope = peak_envelope(audio, 10)
    assert envelope.size == 20 and envelope.max() == pytest.approx(0.9)
    assert envelope.min() == pytest.approx(-0.8)
    assert peak_envelope(audio[:15], 10).size == 15


def test_file_source_serves_the_file_in_blocks(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, stream(), RATE)
    source = FileSource(path)
    assert isinstance(source, AudioSource)
    with source:
        blocks = []
        while (block := source.read()) is not None:
            blocks.append(block)
    assert {b.size for b in blocks[:-1]} == {480}
    assert np.allclose(np.concatenate(blocks), stream(), atol=1e-4)
    assert source.exhausted


def test_realtime_source_paces_blocks():
    source = ArraySource(tone(2.0), RATE, realtime=True)
    source.start()
    assert sum(b.size for b in source.drain()) < RATE // 2  # not all at once
    assert source.read(timeout=0.5) is not None


def test_failing_source_hands_out_its_audio_before_the_error():
    source = ArraySource(stream(), RATE, fail_after=1.0)
    source.start()
    got = source.drain()
    assert sum(b.size for b in got) == RATE
    with pytest.raises(AudioDeviceError, match="recording so far is kept"):
        source.drain()


def test_microphone_callback_only_queues_and_counts_drops():
    source = MicrophoneSource(block_seconds=0.03, queue_seconds=0.06)
    block = np.full((480, 2), 0.5, np.float32)
    for _ in range(3):
        source._callback(block, 480, None, None)
    assert source.dropped == 1
    got = source.drain()
    assert len(got) == 2 and got[0].shape == (480,) and got[0][0] == pytest.approx(0.5)
    # a stream that ends on its own (device unplugged) is reported once the queue is empty
    source._running = True
    source._callback(block, 480, None, None)
    source._ended.set()
    assert len(source.drain()) == 1
    with pytest.raises(AudioDeviceError, match="stopped delivering audio"):
        source.drain()
    assert not source._running


def test_device_resolution_and_missing_devices():
    devices = [
        AudioDevice("input", 0, "pulse", "ALSA", 32, 44100),
        AudioDevice("input", 1, "default", "ALSA", 32, 44100, is_default=True),
    ]
    assert resolve_device(None, devices).name == "default"
    assert resolve_device("0", devices).name == "pulse"
    assert resolve_device("PULSE", devices).name == "pulse"
    with pytest.raises(AudioDeviceError, match="no input device matches 'usb'"):
        resolve_device("usb", devices)
    with pytest.raises(AudioDeviceError, match="no audio input device found"):
        resolve_device(None, [])


def test_missing_portaudio_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as without PortAudio
    with pytest.raises(AudioDeviceError, match="PortAudio"):
        microphone.list_input_devices()


@pytest.fixture(scope="module")
def dynamic_plan():
    return Plan(entries={"encoder": "dynamic"}, name="enc-dynamic")


def test_listen_transcribes_each_segment_with_both_models(tiny_model, dynamic_plan):
    models = live_models(tiny_model, dynamic_plan)
    assert [name for name, _ in models] == [FLOAT, QUANTIZED]
    transcriber = SegmentTranscriber(models)
    transcriber.warm_up(0.5)
    seen = []
    outcome = listen(ArraySource(stream(), RATE), transcriber, on_result=seen.append)
    assert outcome.error is None and outcome.errors == []
    assert [r.index for r in outcome.results] == [0, 1] and seen == outcome.results
    for result in outcome.results:
        assert [o.name for o in result.outputs] == [FLOAT, QUANTIZED]
        for output in result.outputs:
            assert output.latency > 0
            assert output.rtf == pytest.approx(output.latency / result.duration)
        lines = result.lines()
        assert len(lines) == 2 and lines[0].startswith("[00:0") and "RTF" in lines[0]
    assert outcome.recording is not None
    assert np.allclose(outcome.recording.audio(), stream())


def test_listen_resamples_to_the_model_rate_and_honours_seconds(tiny_model):
    audio = np.interp(np.arange(0, stream().size, 0.5), np.arange(stream().size), stream())
    transcriber = SegmentTranscriber(live_models(tiny_model))
    outcome = listen(ArraySource(audio.astype(np.float32), 32000), transcriber, seconds=2.3)
    assert outcome.recording is not None and outcome.recording.duration == pytest.approx(2.3)
    (result,) = outcome.results  # the first utterance only
    assert result.reason == "silence" and 1.2 <= result.duration <= 1.6


def test_device_lost_mid_recording_keeps_the_audio_and_transcribes_it(tiny_model):
    transcriber = SegmentTranscriber(live_models(tiny_model))
    outcome = listen(ArraySource(stream(), RATE, fail_after=3.0), transcriber)
    assert isinstance(outcome.error, AudioDeviceError)
    assert outcome.recording is not None and outcome.recording.duration == pytest.approx(3.0)
    # the first utterance, and the second one cut short, are both transcribed
    assert [r.reason for r in outcome.results] == ["silence", "end"]


def test_static_plan_without_calibration_is_refused(tiny_model):
    with pytest.raises(SpeechquantError, match="calibration"):
        live_models(tiny_model, Plan(entries={"encoder": "static"}))


def test_recording_saved_into_a_user_dataset_is_usable_as_data():
    recording = Recording(RATE)
    for block in np.array_split(stream(), 7):
        recording.append(block)
    assert recording.duration == pytest.approx(stream().size / RATE)
    assert recording.tail(1.0).size == RATE
    first = save_to_dataset(recording.audio(), RATE, "  hello   world ", "mic-test")
    second = save_to_dataset(recording.audio(), RATE, "second take", "mic-test", stem=first.stem)
    assert second.name == f"{first.stem}-2.wav"
    assert "mic-test" in user_datasets()
    dataset = open_dataset(first.parent)
    assert dataset.form == "folder" and [u.ref for u in dataset] == ["hello world", "second take"]
    with pytest.raises(DataError, match="reference"):
        save_to_dataset(recording.audio(), RATE, "   ", "mic-test")
    with pytest.raises(DataError, match="not usable"):
        save_to_dataset(recording.audio(), RATE, "text", "../escape")
    with pytest.raises(DataError, match="nothing was recorded"):
        save_to_dataset(np.zeros(0, np.float32), RATE, "text", "mic-test")


def test_cli_listen_on_a_file(tmp_path, capsys):
    path = tmp_path / "stream.wav"
    sf.write(path, stream(), RATE)
    record = tmp_path / "rec.wav"
    code = main(["listen", "replica:wav2vec2-tiny", "--input", str(path), "--record", str(record)])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and all(" float " in line and "RTF" in line for line in lines)
    assert "listening on" in err and "2 segments; float median latency" in err
    assert sf.info(str(record)).duration == pytest.approx(stream().size / RATE)


def test_cli_listen_without_a_device_says_so(monkeypatch, capsys):
    monkeypatch.setattr(microphone, "list_input_devices", lambda refresh=True: [])
    assert main(["listen", "replica:wav2vec2-tiny", "--seconds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: no audio input device found; connect a microphone, or start an audio server "
        "(PulseAudio/PipeWire) that provides one"
    ]
    assert main(["listen", "--list-devices"]) == 2
    assert capsys.readouterr().err.startswith("error: no audio input device found")
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as without PortAudio
    assert main(["listen", "--list-devices"]) == 2
    assert "error: audio input is unavailable: PortAudio" in capsys.readouterr().err
    assert main(["listen"]) == 2
    assert "listen needs SOURCE" in capsys.readouterr().err
