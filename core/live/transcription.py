"""Live transcription: segments from an audio source, run through one or two models.

- :func:`live_models` gives the float model and, where a plan quantizes something, its variant.
- :class:`SegmentTranscriber` runs every model on a segment (resampled to each model's rate) and
  times it: latency (seconds from the start of that model's work to its text) and RTF.
- :class:`TranscriptionThread` does that in one background thread, in order, so capture and
  display never wait for a model.
- :func:`listen` is the whole loop for the CLI and tests: read the source, keep the recording,
  segment, transcribe in the background, report each result.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torchaudio.functional as taf

from speechquant.core.errors import AudioDeviceError, CalibrationError
from speechquant.core.live.microphone import AudioSource
from speechquant.core.live.recording import Recording
from speechquant.core.live.segmenter import Segment, Segmenter, SegmenterSettings
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check
from speechquant.core.quantization.plan import Plan

FLOAT, QUANTIZED = "float", "quantized"


@dataclass(frozen=True)
class ModelOutput:
    """One model's text for one segment, and what it cost."""

    name: str
    text: str
    latency: float
    rtf: float


@dataclass(frozen=True)
class SegmentResult:
    """Every model's output for one segment.

    ``waited`` is how long the segment queued before the first model started on it.
    """

    index: int
    start: float
    duration: float
    reason: str
    outputs: tuple[ModelOutput, ...]
    waited: float = 0.0

    def output(self, name: str) -> ModelOutput | None:
        return next((o for o in self.outputs if o.name == name), None)

    def lines(self) -> list[str]:
        """One line per model: ``[start-end] name latency RTF text`` (text last)."""
        span = f"[{_clock(self.start)}-{_clock(self.start + self.duration)}]"
        width = max(len(o.name) for o in self.outputs)
        return [
            f"{span} {o.name:<{width}}  {o.latency:5.2f} s  RTF {o.rtf:5.3f}  {o.text}"
            for o in self.outputs
        ]


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}"


def live_models(
    model: LoadedModel,
    plan: Plan | None = None,
    calibration: Sequence[torch.Tensor] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[tuple[str, LoadedModel]]:
    """``[("float", model)]`` plus ``("quantized", variant)`` when ``plan`` quantizes anything.

    Static entries need ``calibration`` waveforms (at the model's rate); see
    :func:`calibration_waves` for getting them from a DATA argument.
    """
    models = [(FLOAT, model)]
    if plan is None or plan.is_float():
        return models
    from speechquant.core.evaluation.experiment import needs_calibration
    from speechquant.core.quantization.apply import apply_plan

    if needs_calibration(plan) and not calibration:
        raise CalibrationError(
            f"plan {plan.name} has static entries, which need calibration utterances; give "
            "calibration DATA, or choose dynamic/bf16 for those modules"
        )
    check(cancel)
    variant = apply_plan(model, plan, calibration, progress=progress, cancel=cancel)
    models.append((QUANTIZED, variant))
    return models


def calibration_waves(
    data: str,
    n: int,
    rate: int,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[torch.Tensor]:
    """The first ``n`` readable utterances of DATA as waveforms at ``rate``."""
    from speechquant.core.data.datasets import iter_loaded, open_dataset

    dataset = open_dataset(data, limit=n, progress=progress, cancel=cancel)
    return [wav for _, wav in iter_loaded(dataset, rate, cancel=cancel)]


class SegmentTranscriber:
    """Runs each model on a segment, timing it. Use from one thread at a time."""

    def __init__(self, models: Sequence[tuple[str, LoadedModel]]) -> None:
        if not models:
            raise ValueError("SegmentTranscriber needs at least one model")
        self.models = list(models)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.models]

    def warm_up(self, seconds: float = 1.0) -> None:
        """One untimed pass per model on quiet noise, so the first real segment is timed fairly."""
        for _, model in self.models:
            rng = np.random.default_rng(0)
            noise = 1e-3 * rng.standard_normal(int(seconds * model.sample_rate))
            model.transcribe(torch.from_numpy(noise.astype(np.float32)))

    def transcribe(self, segment: Segment, waited: float = 0.0) -> SegmentResult:
        source = torch.from_numpy(np.ascontiguousarray(segment.audio, dtype=np.float32))
        by_rate: dict[int, torch.Tensor] = {}
        outputs = []
        for name, model in self.models:
            rate = model.sample_rate
            if rate not in by_rate:
                by_rate[rate] = (
                    source
                    if rate == segment.sample_rate
                    else taf.resample(source, segment.sample_rate, rate).contiguous()
                )
            began = time.perf_counter()
            text = model.transcribe(by_rate[rate])
            latency = time.perf_counter() - began
            rtf = latency / segment.duration if segment.duration > 0 else float("nan")
            outputs.append(ModelOutput(name, text.strip(), latency, rtf))
        return SegmentResult(
            index=segment.index,
            start=segment.start,
            duration=segment.duration,
            reason=segment.reason,
            outputs=tuple(outputs),
            waited=waited,
        )


class TranscriptionThread:
    """Transcribes submitted segments in one daemon thread, in submission order.

    ``on_result(result)`` and ``on_error(exc)`` are called from that thread. An error in one
    segment is reported and the thread carries on with the next.
    """

    def __init__(
        self,
        transcriber: SegmentTranscriber,
        on_result: Callable[[SegmentResult], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.transcriber = transcriber
        self.on_result = on_result
        self.on_error = on_error
        self._queue: queue.Queue[tuple[Segment, float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="speechquant-live", daemon=True)
        self._thread.start()

    def submit(self, segment: Segment) -> None:
        self._queue.put((segment, time.perf_counter()))

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> bool:
        """Finish the queued segments and end the thread; False if it is still busy."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            segment, submitted = item
            try:
                waited = time.perf_counter() - submitted
                result = self.transcriber.transcribe(segment, waited)
            except Exception as exc:  # reported; the next segment still gets transcribed
                if self.on_error is not None:
                    self.on_error(exc)
                continue
            self.on_result(result)


@dataclass
class ListenOutcome:
    """What :func:`listen` heard and recognized."""

    results: list[SegmentResult] = field(default_factory=list)
    recording: Recording | None = None
    error: AudioDeviceError | None = None
    errors: list[str] = field(default_factory=list)


def listen(
    source: AudioSource,
    transcriber: SegmentTranscriber,
    *,
    settings: SegmenterSettings | None = None,
    seconds: float | None = None,
    on_result: Callable[[SegmentResult], None] | None = None,
    on_start: Callable[[AudioSource], None] | None = None,
    cancel: CancelToken | None = None,
) -> ListenOutcome:
    """Capture from ``source`` for ``seconds`` of audio (None: until it ends or is cancelled).

    Segments are transcribed in a background thread while capture goes on; ``on_result`` gets
    each result (from that thread) as soon as it is ready; ``on_start(source)`` is called once
    audio flows (when the first block has arrived; a device may take a moment). At the end the open segment is
    closed and every segment is transcribed before returning.

    A device failure does not raise: capture stops, what was captured is segmented and
    transcribed, and the error is returned in :attr:`ListenOutcome.error` together with the
    recording so far. Errors opening the device (none, busy, PortAudio missing) do raise
    :class:`AudioDeviceError`.
    """
    outcome = ListenOutcome()
    lock = threading.Lock()

    def got(result: SegmentResult) -> None:
        with lock:
            outcome.results.append(result)
        if on_result is not None:
            on_result(result)

    def failed(exc: BaseException) -> None:
        with lock:
            outcome.errors.append(f"{type(exc).__name__}: {exc}")

    source.start()
    try:
        recording = outcome.recording = Recording(source.sample_rate)
        segmenter = Segmenter(source.sample_rate, settings)
        worker = TranscriptionThread(transcriber, got, failed)
        limit = None if seconds is None else int(seconds * source.sample_rate)
        try:
            while limit is None or recording.samples < limit:
                if cancel is not None and cancel.cancelled:
                    break
                try:
                    block = source.read(timeout=0.1)
                except AudioDeviceError as exc:
                    outcome.error = exc
                    break
                if block is None:
                    if source.exhausted:
                        break
                    continue
                if limit is not None:
                    block = block[: limit - recording.samples]
                if on_start is not None and not recording.samples:
                    on_start(source)
                recording.append(block)
                for segment in segmenter.push(block):
                    worker.submit(segment)
        finally:
            source.stop()
            for segment in segmenter.flush():
                worker.submit(segment)
            worker.close()
    except BaseException:
        source.stop()
        raise
    return outcome
