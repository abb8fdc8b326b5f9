"""``speechquant listen``: transcribe the microphone live with the float and quantized models.

Transcripts go to stdout, one line per segment and model (``[start-end] name latency RTF text``);
everything else (device, progress, summary, errors) goes to stderr.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from speechquant.core.cli.tqdm_progress import TqdmProgress
from speechquant.core.errors import AudioDeviceError, CalibrationError
from speechquant.core.live import microphone
from speechquant.core.live.microphone import AudioSource
from speechquant.core.live.segmenter import SegmenterSettings
from speechquant.core.live.transcription import (
    ListenOutcome,
    SegmentResult,
    SegmentTranscriber,
    listen,
    live_models,
)
from speechquant.core.progress import CancelToken
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.settings import ENGINES, QuantSettings


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_listen_parser(sub: Any, source_help: str, data_help: str) -> None:
    defaults = SegmenterSettings()
    p = sub.add_parser(
        "listen",
        help="transcribe the microphone live (float and, with --plan, quantized)",
        description="Transcribe the microphone live. Each recognized segment is printed as "
        "'[start-end] model latency RTF text'; messages go to stderr.",
    )
    p.add_argument("source", nargs="?", help=source_help)
    p.add_argument("--device", help="input device: index or (part of) its name (default: default)")
    p.add_argument("--seconds", type=float, help="stop after this much audio (default: Ctrl-C)")
    p.add_argument("--plan", help="plan JSON: also run the quantized model on every segment")
    p.add_argument("--calib", help=f"calibration DATA for static plan entries; {data_help}")
    p.add_argument("--calib-n", type=int, default=10, help="calibration utterances (default 10)")
    p.add_argument("--engine", choices=ENGINES, help="quantized engine (overrides the plan's)")
    p.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    p.add_argument(
        "--input", metavar="FILE", help="read this audio file instead of a microphone (testing)"
    )
    p.add_argument(
        "--realtime", action="store_true", help="with --input: play the file at its own speed"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=defaults.threshold_db,
        help="speech level threshold in dBFS (default %(default)s)",
    )
    p.add_argument(
        "--silence",
        type=float,
        default=defaults.silence_end,
        help="seconds of silence that end a segment (default %(default)s)",
    )
    p.add_argument(
        "--max-segment",
        type=float,
        default=defaults.max_segment,
        help="longest segment in seconds (default %(default)s)",
    )
    p.add_argument("--record", metavar="WAV", help="also save what was captured as a WAV file")
    p.set_defaults(func=cmd_listen)


def _list_devices() -> int:
    devices = microphone.list_input_devices()
    if not devices:
        raise AudioDeviceError(
            "no audio input device found; connect a microphone or start an audio server"
        )
    for device in devices:
        print(f"{device.label()}  ({device.channels} ch)")
    return 0


@contextmanager
def _sigint_cancels(cancel: CancelToken) -> Iterator[None]:
    """Ctrl-C stops listening normally (the last segment is still transcribed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _summary(outcome: ListenOutcome) -> str:
    if not outcome.results:
        return "no speech was recognized"
    parts = []
    for name in [o.name for o in outcome.results[0].outputs]:
        outputs = [r.output(name) for r in outcome.results]
        latency = statistics.median(o.latency for o in outputs if o)
        rtf = statistics.median(o.rtf for o in outputs if o)
        parts.append(f"{name} median latency {latency:.2f} s (RTF {rtf:.3f})")
    return f"{len(outcome.results)} segments; " + ", ".join(parts)


def _load_plan(args: argparse.Namespace) -> Plan | None:
    if not args.plan:
        return None
    plan = Plan.load(args.plan)
    if args.engine:
        plan.settings = QuantSettings(**{**plan.settings.__dict__, "engine": args.engine})
    return plan


def _open_source(args: argparse.Namespace, rate: int) -> AudioSource:
    if args.input:
        from speechquant.core.live.file_source import FileSource

        return FileSource(args.input, realtime=args.realtime)
    from speechquant.core.live.microphone import MicrophoneSource

    return MicrophoneSource(args.device, sample_rate=rate)


def cmd_listen(args: argparse.Namespace) -> int:
    from speechquant.core.cli.commands import open_source
    from speechquant.core.evaluation.experiment import needs_calibration
    from speechquant.core.live.transcription import calibration_waves

    if args.list_devices:
        return _list_devices()
    if not args.source:
        _say("error: listen needs SOURCE (the model to transcribe with), or --list-devices")
        return 2
    settings = SegmenterSettings(
        threshold_db=args.threshold, silence_end=args.silence, max_segment=args.max_segment
    )
    plan = _load_plan(args)
    if plan is not None and needs_calibration(plan) and not args.calib:
        raise CalibrationError(
            "the plan has static entries, which need calibration utterances; pass --calib DATA"
        )
    if not args.input:
        microphone.resolve_device(args.device)  # no microphone: say so before loading any model
    with TqdmProgress() as bar:
        model = open_source(args, bar)
        calibration = None
        if plan is not None and needs_calibration(plan):
            calibration = calibration_waves(args.calib, args.calib_n, model.sample_rate, bar)
        models = live_models(model, plan, calibration, progress=bar)
    transcriber = SegmentTranscriber(models)
    _say(f"warming up {', '.join(transcriber.names)}")
    transcriber.warm_up()

    def started(source: AudioSource) -> None:
        until = f" for {args.seconds:g} s" if args.seconds else "; Ctrl-C stops"
        _say(f"listening on {source.name} at {source.sample_rate} Hz{until}")

    def recognized(result: SegmentResult) -> None:
        for line in result.lines():
            print(line, flush=True)

    cancel = CancelToken()
    with _sigint_cancels(cancel):
        outcome = listen(
            _open_source(args, model.sample_rate),
            transcriber,
            settings=settings,
            seconds=args.seconds,
            on_result=recognized,
            on_start=started,
            cancel=cancel,
        )
    for text in outcome.errors:
        _say(f"a segment could not be transcribed: {text}")
    _say(_summary(outcome))
    recording = outcome.recording
    if args.record and recording is not None and recording.samples:
        recording.save_wav(args.record)
        _say(f"wrote {args.record} ({recording.duration:.1f} s)")
    if outcome.error is not None:
        _say(f"error: {outcome.error}")
        return 2
    return 0
