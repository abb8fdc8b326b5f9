"""The Microphone tab: record, see the waveform, read the float and quantized transcripts live.

Capture runs on PortAudio's thread and only fills a queue; a 30 ms QTimer on the GUI thread
drains it into the recording, the segmenter (cheap), the level meter and the waveform. Segments go
to a :class:`~.live_worker.LiveWorker` in a QThread that builds the models (the float one and,
where the window's plan quantizes anything, its variant) and transcribes every segment with both.
The recording can be saved with a typed reference into a user dataset usable as DATA everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.errors import AudioDeviceError, SpeechquantError
from speechquant.core.live.file_source import FileSource
from speechquant.core.live.microphone import AudioSource, MicrophoneSource
from speechquant.core.live.recording import Recording
from speechquant.core.live.segmenter import Segmenter, SegmenterSettings, level_db
from speechquant.core.live.transcription import SegmentResult
from speechquant.core.quantization.plan import Plan

from .input_picker import FILE_INPUT, InputPicker
from .job_slot import JobSlot
from .live_panels import SaveRow, TranscriptPanes
from .live_worker import LiveWorker, ModelsFactory, Waveform, transcriber_factory
from .paths import RememberedFolder
from .run_context import ContextSource, RunContext
from .worker import Job

TICK_MS = 30
SourceFactory = Callable[[Any, int], AudioSource]


def default_source(device: Any, rate: int) -> AudioSource:
    """A microphone, or a WAV/FLAC file played at its own pace through the same pipeline."""
    if isinstance(device, tuple) and device[0] == FILE_INPUT:
        return FileSource(device[1], sample_rate=rate, realtime=True)
    return MicrophoneSource(device, sample_rate=rate)


def transcribers_for(ctx: RunContext, plan: Plan | None) -> ModelsFactory:
    """The float (+ quantized) transcriber for ``ctx``; static plans calibrate on its DATA."""
    calib = ctx.bench.calib or ctx.data or None
    return transcriber_factory(ctx.model, plan, calib, ctx.bench.calib_n)


class MicrophoneTab(QWidget):
    """Live transcription through the window's job slot, on the context's model and plan.

    ``models_for(context, plan)`` gives the factory that builds the transcriber in the worker.
    """

    message = Signal(str, str)  # text, level (info/warning/error)
    recordingStarted = Signal()
    recordingStopped = Signal()
    modelsReady = Signal(list)
    segmentTranscribed = Signal(object)
    idle = Signal()

    def __init__(
        self,
        slot: JobSlot,
        contexts: ContextSource,
        folder: RememberedFolder | None = None,
        models_for: Callable[[RunContext, Plan | None], ModelsFactory] = transcribers_for,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.slot = slot
        self.contexts = contexts
        self.folder = folder
        self.models_for = models_for
        self.source_factory: SourceFactory = default_source
        self.source: AudioSource | None = None
        self.recording: Recording | None = None
        self.segmenter: Segmenter | None = None
        self.worker: LiveWorker | None = None
        self.job: Job | None = None
        self.results: list[SegmentResult] = []
        self._listed = False
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self._build()
        self._update_buttons()

    # --- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        self.device = InputPicker(self.folder)
        self.device.currentIndexChanged.connect(lambda _i: self._update_buttons())
        self.refresh_button = QPushButton("↻")
        self.refresh_button.setToolTip("List the input devices again")
        self.refresh_button.setFixedWidth(32)
        self.refresh_button.clicked.connect(self.refresh_devices)
        self.mode = QComboBox()
        self.mode.addItem("Continuous (voice activity)", "continuous")
        self.mode.addItem("Push to talk", "push-to-talk")
        self.record_button = QPushButton("● Record")
        self.record_button.setObjectName("recordButton")
        self.record_button.clicked.connect(self.toggle_recording)
        self.talk_button = QPushButton("Hold to talk")
        self.talk_button.pressed.connect(self.talk_pressed)
        self.talk_button.released.connect(self.talk_released)
        top = QHBoxLayout()
        for label, widget in (("Input", self.device), ("Mode", self.mode)):
            top.addWidget(QLabel(label))
            top.addWidget(widget)
            if widget is self.device:
                top.addWidget(self.refresh_button)
        top.addStretch(1)
        top.addWidget(self.talk_button)
        top.addWidget(self.record_button)

        self.meter = QProgressBar()
        self.meter.setRange(0, 60)
        self.meter.setFormat("-∞ dBFS")
        self.meter.setMaximumHeight(16)
        self.speech = QLabel("")
        self.speech.setMinimumWidth(80)
        meter_row = QHBoxLayout()
        meter_row.addWidget(QLabel("Level"))
        meter_row.addWidget(self.meter, 1)
        meter_row.addWidget(self.speech)
        self.waveform = Waveform()

        self.transcripts = TranscriptPanes()
        self.panes, self.pane_boxes = self.transcripts.panes, self.transcripts.boxes
        self.saver = SaveRow()
        self.saver.save_button.clicked.connect(self.save_recording)
        self.saver.said.connect(self.say)
        self.dataset, self.reference = self.saver.dataset, self.saver.reference
        self.save_button = self.saver.save_button
        self.status = QLabel(
            "press Record to transcribe the microphone, or pick Audio file… as the input"
        )
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(meter_row)
        layout.addWidget(self.waveform)
        layout.addWidget(self.transcripts, 1)
        layout.addWidget(self.saver)
        layout.addWidget(self.status)
        self.slot.busyChanged.connect(lambda _busy: self._update_buttons())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._listed:  # PortAudio is only touched once the tab is looked at
            self.refresh_devices()

    # --- state -----------------------------------------------------------------------------
    @property
    def capturing(self) -> bool:
        return self.source is not None

    @property
    def busy(self) -> bool:
        """Capturing, or still transcribing what was captured."""
        return self.capturing or self.job is not None

    def _input_ready(self) -> bool:
        return self.device.ready()

    def _update_buttons(self) -> None:
        finishing = self.job is not None and not self.capturing
        other_job = self.slot.busy and self.job is None
        self.record_button.setText("■ Stop" if self.capturing else "● Record")
        self.record_button.setEnabled(
            self.capturing or (not finishing and not other_job and self._input_ready())
        )
        self.record_button.setToolTip(
            "another job is running; wait for it or cancel it"
            if other_job
            else ""
            if self._input_ready()
            else "no microphone: choose Audio file… as the input"
        )
        self.talk_button.setEnabled(self.capturing and self.mode.currentData() == "push-to-talk")
        for widget in (self.device, self.refresh_button, self.mode):
            widget.setEnabled(not self.busy)
        self.save_button.setEnabled(
            not self.capturing and self.recording is not None and self.recording.samples > 0
        )

    def say(self, text: str, level: str = "info") -> None:
        """One line in the tab (errors in red) and in the window's log."""
        color = {"error": "#c62828", "warning": "#a65c00"}.get(level, "#222")
        self.status.setStyleSheet(f"color: {color}")
        self.status.setText(text)
        self.message.emit(text, level)

    # --- devices ---------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        if self.capturing:
            return
        self._listed = True
        problem = self.device.refresh()
        if problem:
            self.say(problem, "warning")
        self._update_buttons()

    def use_file(self, path: str) -> None:
        """Make the audio file at ``path`` the input (played at its own pace when recording)."""
        self.device.use_file(path)
        self._update_buttons()

    def select_device(self, name: str) -> bool:
        """Choose the first device whose label contains ``name``."""
        return self.device.select(name)

    # --- recording -------------------------------------------------------------------------
    def toggle_recording(self) -> None:
        if self.capturing:
            self.stop_recording()
        else:
            self.start_recording()

    def start_recording(self) -> bool:
        if self.contexts.model is None:
            self.say("open a model before recording", "error")
            return False
        if self.busy:
            self.say("still transcribing the last recording; wait a moment", "warning")
            return False
        if not self.slot.can_start(quiet=True):
            self.say(f"{self.slot.what} is running; wait for it or cancel it first", "error")
            return False
        if self.device.currentData() == FILE_INPUT:
            self.say("choose an audio file (Audio file…) or a microphone as the input", "error")
            return False
        try:
            ctx = self.contexts.snapshot("recording", need_data=False)
            model, plan = ctx.model, ctx.plan
            quantized = not plan.is_float()
            factory = self.models_for(ctx, plan if quantized else None)
            settings = SegmenterSettings(mode=str(self.mode.currentData()))
            source = self.source_factory(self.device.currentData(), model.sample_rate)
            source.start()
        except SpeechquantError as exc:
            self.say(str(exc), "error")
            return False
        self.source = source
        self.recording = Recording(source.sample_rate)
        self.segmenter = Segmenter(source.sample_rate, settings)
        self.results = []
        self.transcripts.start(plan.name if plan is not None and quantized else "none", quantized)
        self.waveform.reset(source.sample_rate)
        worker = LiveWorker(factory)
        worker.ready.connect(self._models_ready)
        worker.segmentDone.connect(self._segment_done)
        worker.segmentFailed.connect(self._segment_failed)
        worker.failed.connect(self._worker_failed)
        job = self.slot.start(worker, "live transcription")
        if job is None:
            source.stop()
            self.source = None
            self._update_buttons()
            return False
        self.worker, self.job = worker, job
        job.done.connect(self._worker_done)
        self.timer.start()
        self._update_buttons()
        self.say(f"recording from {source.name} at {source.sample_rate} Hz; preparing the models…")
        self.recordingStarted.emit()
        return True

    def stop_recording(self, error: str | None = None) -> None:
        """Stop capturing; what was captured is still segmented, transcribed and kept."""
        source, self.source = self.source, None
        if source is None:
            return
        self.timer.stop()
        source.stop()
        try:
            blocks = source.drain()
        except AudioDeviceError:
            blocks = []
        self._consume(blocks)
        if self.segmenter is not None and self.worker is not None:
            for segment in self.segmenter.flush():
                self.worker.submit(segment)
        if self.worker is not None:
            self.worker.finish()
        self.meter.setValue(0)
        self.speech.setText("")
        self._update_buttons()
        seconds = self.recording.duration if self.recording else 0.0
        if error:
            self.say(error, "error")
        else:
            self.say(f"stopped after {seconds:.1f} s; type the reference to save the recording")
        self.recordingStopped.emit()

    def talk_pressed(self) -> None:
        if self.segmenter is not None and self.capturing:
            for segment in self.segmenter.press():
                self._submit(segment)

    def talk_released(self) -> None:
        if self.segmenter is not None and self.capturing:
            for segment in self.segmenter.release():
                self._submit(segment)

    def _submit(self, segment: Any) -> None:
        if self.worker is not None:
            self.worker.submit(segment)

    @Slot()
    def _tick(self) -> None:
        if self.source is None:
            return
        try:
            blocks = self.source.drain()
        except AudioDeviceError as exc:
            self.stop_recording(str(exc))
            return
        self._consume(blocks)
        if self.source.exhausted:  # a file source has ended
            self.stop_recording()

    def _consume(self, blocks: list[np.ndarray]) -> None:
        if not blocks or self.recording is None or self.segmenter is None:
            return
        audio = np.concatenate(blocks)
        self.recording.append(audio)
        for segment in self.segmenter.push(audio):
            self._submit(segment)
        db = level_db(audio)
        self.meter.setValue(int(np.clip(db + 60.0, 0, 60)))
        self.meter.setFormat(f"{db:.0f} dBFS" if db > -120 else "-∞ dBFS")
        self.speech.setText("● speech" if self.segmenter.in_segment else "")
        self.waveform.add(audio)

    # --- transcription ---------------------------------------------------------------------
    @Slot(list)
    def _models_ready(self, names: list[str]) -> None:
        if self.capturing:
            self.say(f"listening ({' and '.join(names)} model{'s' if len(names) > 1 else ''})")
        self.modelsReady.emit(names)

    @Slot(object)
    def _segment_done(self, result: SegmentResult) -> None:
        self.results.append(result)
        self.transcripts.add(result)
        self.segmentTranscribed.emit(result)

    @Slot(str)
    def _segment_failed(self, text: str) -> None:
        self.say(f"a segment could not be transcribed: {text}", "warning")

    @Slot(str)
    def _worker_failed(self, text: str) -> None:
        if self.capturing:
            self.stop_recording()
        self.say(f"live transcription stopped: {text}", "error")

    def _worker_done(self, job: Job) -> None:
        if job is self.job:
            self.job, self.worker = None, None
        if self.capturing:  # cancelled from the run panel (or failed) while still capturing
            self.stop_recording()
        self._update_buttons()
        self.idle.emit()

    # --- saving ----------------------------------------------------------------------------
    def save_recording(self) -> str | None:
        """Save the recording and the typed reference into the chosen user dataset."""
        recording = self.recording
        audio = recording.audio() if recording is not None and recording.samples else None
        return self.saver.save(audio, recording.sample_rate if recording is not None else 0)

    def shutdown(self, wait_ms: int = 60_000) -> None:
        """Stop capture and transcription (window closing)."""
        if self.capturing:
            self.stop_recording()
        if self.job is not None:
            self.job.cancel()
            self.job.wait(wait_ms)
