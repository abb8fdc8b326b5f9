"""The Microphone tab's transcription worker and its waveform view.

:class:`LiveWorker` is a :class:`~.worker.Worker` (same signals, same QThread handling through
:func:`~.worker.start_worker`) whose job builds the models once, then transcribes the segments
it is handed until :meth:`LiveWorker.finish` or ``cancel``; each result is a
``segmentDone(SegmentResult)`` signal. Nothing here runs on the GUI thread or the audio callback.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

from speechquant.core.live.recording import peak_envelope
from speechquant.core.live.segmenter import Segment
from speechquant.core.live.transcription import SegmentTranscriber
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback
from speechquant.core.quantization.plan import Plan

from .worker import Worker, error_text

ModelsFactory = Callable[[ProgressCallback, CancelToken], SegmentTranscriber]


class LiveWorker(Worker):
    """Transcribes segments in order, in its own thread (see the module docstring)."""

    ready = Signal(list)
    segmentDone = Signal(object)
    segmentFailed = Signal(str)

    def __init__(self, factory: ModelsFactory) -> None:
        super().__init__(self._loop, "live")
        self.factory = factory
        self.segments: queue.Queue[tuple[Segment, float] | None] = queue.Queue()

    def submit(self, segment: Segment) -> None:
        self.segments.put((segment, time.perf_counter()))

    def finish(self) -> None:
        """Transcribe what was submitted, then end."""
        self.segments.put(None)

    def cancel(self) -> None:
        """End after the segment in progress; the rest are dropped."""
        super().cancel()
        self.segments.put(None)

    def _loop(self, progress: ProgressCallback, cancel: CancelToken) -> int:
        transcriber = self.factory(progress, cancel)
        self.ready.emit(transcriber.names)
        done = 0
        while not cancel.cancelled:
            item = self.segments.get()
            if item is None:
                break
            segment, submitted = item
            try:
                result = transcriber.transcribe(segment, time.perf_counter() - submitted)
            except Exception as exc:  # one bad segment must not end live transcription
                self.segmentFailed.emit(error_text(exc))
                continue
            done += 1
            self.segmentDone.emit(result)
        return done


class Waveform(pg.PlotWidget):
    """The last ``seconds`` of audio as one curve, peak-downsampled to the widget's width."""

    def __init__(self, seconds: float = 8.0) -> None:
        super().__init__(background="w")
        self.seconds = seconds
        self.rate = 16000
        self.buffer = np.zeros(int(seconds * self.rate), dtype=np.float32)
        item = self.getPlotItem()
        item.setLabel("bottom", "seconds", color="#222")
        item.hideAxis("left")
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.setXRange(-seconds, 0, padding=0)
        item.setYRange(-1, 1, padding=0.02)
        self.curve = item.plot(pen=pg.mkPen("#1f5fae", width=1))
        self.curve.setClipToView(True)
        self.setMinimumHeight(110)
        self.setMaximumHeight(200)

    def reset(self, rate: int) -> None:
        self.rate = rate
        self.buffer = np.zeros(int(self.seconds * rate), dtype=np.float32)
        self.curve.setData([], [])

    def add(self, samples: np.ndarray) -> None:
        """Scroll ``samples`` in and redraw."""
        n = self.buffer.size
        if samples.size >= n:
            self.buffer = samples[-n:].astype(np.float32, copy=True)
        elif samples.size:
            self.buffer = np.concatenate([self.buffer[samples.size :], samples])
        buckets = max(50, min(2000, self.width()))
        envelope = peak_envelope(self.buffer, buckets)
        x = np.linspace(-self.seconds, 0.0, envelope.size, dtype=np.float32)
        self.curve.setData(x, envelope)


def transcriber_factory(
    model: LoadedModel, plan: Plan | None, calib: str | None, calib_n: int
) -> ModelsFactory:
    """Build the float (+ quantized) transcriber in the worker; calibrates static plans on DATA."""

    def build(progress: ProgressCallback, cancel: CancelToken) -> SegmentTranscriber:
        from speechquant.core.evaluation.experiment import needs_calibration
        from speechquant.core.live.transcription import calibration_waves, live_models

        waves = None
        if plan is not None and needs_calibration(plan) and calib:
            waves = calibration_waves(calib, calib_n, model.sample_rate, progress, cancel)
        transcriber = SegmentTranscriber(live_models(model, plan, waves, progress, cancel))
        transcriber.warm_up()
        return transcriber

    return build
