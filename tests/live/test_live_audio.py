"""The real capture path: PulseAudio virtual microphone -> PortAudio -> sounddevice -> Whisper.

A private PulseAudio server (fixture ``virtual_mic``) plays Festival speech into a virtual source;
``MicrophoneSource`` records it like any microphone, and Whisper tiny.en must recognize it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import soundfile as sf

from speechquant.core.errors import AudioDeviceError
from speechquant.core.live.microphone import MicrophoneSource, list_input_devices
from speechquant.core.live.transcription import FLOAT, SegmentTranscriber, listen, live_models

from ..audio_fixtures import PulseServer, recall

# A wedged audio stack must fail the run, not hang CI: the thread method also ends calls stuck in C.
pytestmark = [pytest.mark.audio, pytest.mark.timeout(300, method="thread")]

DEVICE = "pulse"  # PortAudio's ALSA device backed by PulseAudio (libasound2-plugins)


def sentence_seconds(wav) -> float:
    return sf.info(str(wav)).duration


def test_virtual_microphone_is_listed(virtual_mic):
    names = [d.name for d in list_input_devices()]
    assert DEVICE in names, names


def test_whisper_transcribes_the_virtual_microphone(virtual_mic, spoken_sentence, demo_whisper):
    text, wav = spoken_sentence
    transcriber = SegmentTranscriber(live_models(demo_whisper))
    transcriber.warm_up()
    players: list[subprocess.Popen[bytes]] = []
    outcome = listen(
        MicrophoneSource(DEVICE, sample_rate=demo_whisper.sample_rate),
        transcriber,
        seconds=sentence_seconds(wav) + 2.5,
        on_start=lambda source: players.append(virtual_mic.play(wav, delay=0.3)),
    )
    assert players and players[0].wait(30) == 0, players[0].stderr.read() if players else ""
    assert outcome.error is None, outcome.error
    assert outcome.recording is not None and outcome.recording.duration > sentence_seconds(wav)
    heard = " ".join(r.output(FLOAT).text for r in outcome.results)  # type: ignore[union-attr]
    assert recall(text, heard) >= 0.75, heard
    for result in outcome.results:
        output = result.output(FLOAT)
        assert output is not None and output.latency > 0
        print(
            f"segment {result.index}: {result.duration:.2f} s of audio, text after "
            f"{output.latency:.2f} s (RTF {output.rtf:.3f}): {output.text}"
        )
    speech = max(outcome.results, key=lambda r: r.duration)
    latency = speech.output(FLOAT).latency  # type: ignore[union-attr]
    # the point of live use: the text comes back faster than the audio took to say
    assert latency < speech.duration, (latency, speech.duration)


def test_listen_cli_transcribes_the_virtual_microphone(virtual_mic, spoken_sentence, demo_whisper):
    text, wav = spoken_sentence
    seconds = sentence_seconds(wav) + 3.0
    command = [
        sys.executable,
        "-m",
        "speechquant.core.cli.main",
        "listen",
        "demo:whisper-tiny-en",
        "--device",
        DEVICE,
        "--seconds",
        f"{seconds:.1f}",
    ]
    env = {**os.environ, "PULSE_SERVER": virtual_mic.server, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        messages = []
        deadline = time.monotonic() + 180
        for line in proc.stderr:  # wait until the microphone is open, then speak
            messages.append(line)
            if line.startswith("listening on") or time.monotonic() > deadline:
                break
        assert any(m.startswith("listening on") for m in messages), "".join(messages)
        player = virtual_mic.play(wav, delay=0.3)
        out, rest = proc.communicate(timeout=120)
        player.wait(30)
    err = "".join(messages) + rest
    assert proc.returncode == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and all(" float " in line and " s  RTF " in line for line in lines), out
    heard = " ".join(line.split("  ", 3)[-1] for line in lines)
    assert recall(text, heard) >= 0.75, out
    assert "float median latency" in err
    print(out)


def test_device_lost_mid_recording_keeps_the_recording(virtual_mic, spoken_sentence):
    """A second private server plays the 'microphone' and is killed mid-recording."""
    _, wav = spoken_sentence
    doomed = PulseServer()
    previous = os.environ["PULSE_SERVER"]
    os.environ["PULSE_SERVER"] = doomed.server  # the ALSA pulse device connects at open
    source = MicrophoneSource(DEVICE, sample_rate=16000)
    try:
        source.start()
    finally:
        os.environ["PULSE_SERVER"] = previous
    got, error = [], None
    try:
        doomed.play(wav)
        deadline = time.monotonic() + 10  # audio starts flowing (PortAudio may take ~2 s)
        while not got and time.monotonic() < deadline:
            block = source.read(timeout=0.1)
            if block is not None:
                got.append(block)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            block = source.read(timeout=0.1)
            if block is not None:
                got.append(block)
        doomed.stop()  # the device goes away while recording
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                got.extend(source.drain())
            except AudioDeviceError as exc:
                error = exc
                break
            time.sleep(0.03)
    finally:
        source.stop()
        doomed.stop()
    assert error is not None, "the lost device was not reported"
    assert "recording so far is kept" in str(error) and "\n" not in str(error)
    assert sum(b.size for b in got) >= 0.8 * 16000  # what came before the loss is all there
