"""Measure models on one dataset: WER, end-to-end and encoder-only RTF, size, memory, load.

Models compared are timed together (:func:`paired_benchmark`), never against older timings."""

from __future__ import annotations

import io
import resource
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import IO, Any, cast

import torch
from torch import nn

from speechquant.core.data.datasets import Dataset, SkippedItem, Utterance, iter_loaded
from speechquant.core.errors import DataError
from speechquant.core.evaluation.load import LoadMonitor, LoadReport
from speechquant.core.evaluation.metrics import NORMALIZERS, compute_wer
from speechquant.core.evaluation.results import BenchResult, UtteranceRow, with_wer_interval
from speechquant.core.machine import MachineInfo, this_machine
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check, report

BENCH_KEYS = [
    "source",
    "plan",
    "scheme_summary",
    "engine",
    "threads",
    "n_utterances",
    "audio_seconds",
    "wer",
    "insertions",
    "deletions",
    "substitutions",
    "ref_words",
    "rtf",
    "rtf_encoder",
    "warmup",
    "repeats",
    "model_bytes",
    "file_bytes",
    "peak_rss_bytes",
    "skipped",
    "utterances",
    "torch_version",
    "speechbrain_version",
    "started_at",
]
"""The keys of ``bench --json`` before intervals, machine and load were added."""

RESULT_KEYS = [
    *BENCH_KEYS,
    "wer_ci",
    "machine",
    "load",
    "timing_session",
    "comparison",
    "language",
]
"""Every key of a ``bench --json`` object (``comparison`` is ``null`` for the float model,
``language`` for models without a language token)."""


@dataclass
class BenchSettings:
    """How a benchmark runs. ``threads`` None keeps torch's current setting."""

    limit: int | None = None
    warmup: int = 1
    repeats: int = 1
    threads: int | None = None
    normalizer: str = "whisper"
    encoder_rtf: bool = True
    calib: str | None = None
    calib_n: int = 10

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise DataError(f"--limit must be at least 1 (or left out for all), got {self.limit}")
        if self.warmup < 0 or self.repeats < 1:
            raise DataError("--warmup must be >= 0 and --repeats >= 1")
        if self.threads is not None and self.threads < 1:
            raise DataError(f"--threads must be at least 1, got {self.threads}")
        if self.normalizer not in NORMALIZERS:
            raise DataError(
                f"unknown normalizer '{self.normalizer}'; use one of {', '.join(NORMALIZERS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_bytes(mods: nn.Module) -> int:
    """Parameters, buffers and packed quantized weights held by ``mods`` (each tensor once)."""
    from speechquant.core.quantization.tree import build_tree

    return build_tree(mods).root.total_bytes


class _CountingWriter(io.RawIOBase):
    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(memoryview(data).cast("B"))
        self.size += n
        return n


def state_dict_bytes(mods: nn.Module) -> int:
    """Size of ``torch.save(mods.state_dict())`` without keeping it in memory."""
    writer = _CountingWriter()
    torch.save(mods.state_dict(), cast(IO[bytes], writer))
    return writer.size


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(fn: Any, repeats: int) -> tuple[Any, float]:
    times = []
    result = None
    for i in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        if i == 0:
            result = out
    return result, statistics.median(times)


def timing_order(n_models: int, index: int) -> list[int]:
    """The order the models run on utterance ``index``: forward on even, reversed on odd.

    Two models give A B, B A, A B …, so a drift in background load costs both alike.
    """
    order = list(range(n_models))
    return order if index % 2 == 0 else order[::-1]


def _engine_of(model: LoadedModel) -> str | None:
    plan = model.plan
    return None if plan is None or plan.is_float() else str(plan.settings.engine)


def _select(engine: str | None) -> None:
    if engine is not None:
        from speechquant.core.quantization.apply import set_engine

        set_engine(engine)


def paired_benchmark(
    models: Sequence[LoadedModel],
    dataset: Dataset,
    settings: BenchSettings | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[BenchResult]:
    """Measure ``models`` on ``dataset`` together, one ``bench --json`` result each.

    After warm-up (each model on the first ``warmup`` utterances) every utterance is
    transcribed (and encoded) by each model back to back, in the order :func:`timing_order`
    gives, so that load from other processes hits all of them alike; the results share one
    ``timing_session`` and their speed-ups may be divided. Each utterance is timed ``repeats``
    times (median kept). Unreadable audio is skipped and listed.
    """
    settings = settings or BenchSettings()
    if not models:
        raise ValueError("paired_benchmark needs at least one model")
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data = dataset.first(settings.limit) if settings.limit is not None else dataset
    rate = models[0].sample_rate
    engines = [_engine_of(m) for m in models]
    names = [m.plan.name if m.plan is not None else "float" for m in models]
    stage = "benchmarking " + " vs ".join(names)
    monitor = LoadMonitor().start()
    warm = data.first(settings.warmup) if settings.warmup else None
    if warm is not None:
        for _, wav in iter_loaded(warm, rate, cancel=cancel):
            for model, engine in zip(models, engines, strict=True):
                _select(engine)
                try:
                    model.transcribe(wav)
                    if settings.encoder_rtf:
                        model.encode_windows(wav)
                except Exception:  # noqa: S112 - the same utterance is measured (and skipped) below
                    continue
    rows: list[list[UtteranceRow]] = [[] for _ in models]
    loaded = iter_loaded(data, rate, progress=progress, cancel=cancel, stage=stage)
    for index, (utterance, wav) in enumerate(loaded):
        measured: dict[int, UtteranceRow] = {}
        for k in timing_order(len(models), index):
            check(cancel)
            _select(engines[k])
            try:
                measured[k] = _measure(models[k], utterance, wav, settings)
            except (
                Exception
            ) as exc:  # one utterance's failure is its skip reason, not the run's end
                who = f"{names[k]}: " if len(models) > 1 else ""
                data.skipped.append(SkippedItem(utterance.id, who + transcription_failure(exc)))
                break
        else:  # every model transcribed it: the rows stay paired utterance by utterance
            for k, row in measured.items():
                rows[k].append(row)
    if not rows[0]:
        raise DataError(_nothing_transcribed(data))
    report(progress, len(data), len(data), stage)
    load = monitor.stop()
    session = uuid.uuid4().hex
    machine = this_machine(torch.get_num_threads())
    results = []
    for model, engine, model_rows in zip(models, engines, rows, strict=True):
        results.append(
            _result(model, engine, model_rows, data, settings, started_at, load, machine, session)
        )
    return results


def benchmark(
    model: LoadedModel,
    dataset: Dataset,
    settings: BenchSettings | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> BenchResult:
    """Transcribe ``dataset`` with ``model`` alone and return its ``bench --json`` result.

    Its timings pair with no other run; compare plans with :func:`paired_benchmark`.
    """
    return paired_benchmark([model], dataset, settings, progress=progress, cancel=cancel)[0]


def _result(
    model: LoadedModel,
    engine: str | None,
    rows: list[UtteranceRow],
    data: Dataset,
    settings: BenchSettings,
    started_at: str,
    load: LoadReport,
    machine: MachineInfo,
    session: str,
) -> BenchResult:
    plan = model.plan
    result = BenchResult(
        source=model.source,
        plan=plan.to_dict() if plan is not None else None,
        scheme_summary=plan.summary() if plan is not None else {},
        engine=engine or torch.backends.quantized.engine,
        threads=torch.get_num_threads(),
        **row_figures(rows, settings),
        warmup=settings.warmup,
        repeats=settings.repeats,
        model_bytes=model_bytes(model.mods),
        file_bytes=state_dict_bytes(model.mods),
        peak_rss_bytes=peak_rss_bytes(),
        skipped=[s.to_dict() for s in data.skipped],
        utterances=rows,
        torch_version=torch.__version__,
        speechbrain_version=_speechbrain_version(),
        started_at=started_at,
        machine=machine,
        load=load,
        timing_session=session,
        language=model.language,
    )
    return with_wer_interval(result, settings.normalizer)


def row_figures(rows: Sequence[UtteranceRow], settings: BenchSettings) -> dict[str, Any]:
    """A result's counts, WER and RTFs from its rows (whose word counts it fills in).

    WER and ``audio_seconds`` cover every row, the RTFs the timed rows only (NaN without any).
    """
    wer = compute_wer([(r.id, r.ref, r.hyp) for r in rows], settings.normalizer)
    for row, score in zip(rows, wer.utterances, strict=True):
        row.errors, row.ref_words = score.errors, score.ref_words
    timed = [r for r in rows if r.timed]
    timed_audio = sum(r.audio_seconds for r in timed)
    encoder = sum(r.encoder_seconds or 0.0 for r in timed)
    nan = float("nan")
    return {
        "n_utterances": len(rows),
        "audio_seconds": sum(r.audio_seconds for r in rows),
        "insertions": wer.insertions,
        "deletions": wer.deletions,
        "substitutions": wer.substitutions,
        "ref_words": wer.ref_words,
        "wer": wer.wer,
        "rtf": sum(r.seconds for r in timed) / timed_audio if timed_audio else nan,
        "rtf_encoder": (encoder / timed_audio if timed_audio else nan)
        if settings.encoder_rtf
        else None,
    }


def _measure(
    model: LoadedModel, utterance: Utterance, wav: torch.Tensor, settings: BenchSettings
) -> UtteranceRow:
    transcript, seconds = _timed(lambda: model.transcribe_windows(wav), settings.repeats)
    encoder = None
    if settings.encoder_rtf:
        _, encoder = _timed(lambda: model.encode_windows(wav), settings.repeats)
    return UtteranceRow(
        id=utterance.id,
        ref=utterance.ref,
        hyp=transcript.text,
        seconds=seconds,
        audio_seconds=wav.numel() / model.sample_rate,
        encoder_seconds=encoder,
        chunks=transcript.chunking(model.sample_rate),
    )


def transcription_failure(exc: BaseException) -> str:
    """One line saying why an utterance could not be transcribed."""
    lines = str(exc).strip().splitlines()
    detail = lines[0][:200] if lines else type(exc).__name__
    if isinstance(exc, DataError):
        return detail
    return f"transcription failed ({type(exc).__name__}: {detail})"


def _nothing_transcribed(data: Dataset) -> str:
    shown = "; ".join(f"{s.id}: {s.reason}" for s in data.skipped[:3])
    more = f" (and {len(data.skipped) - 3} more)" if len(data.skipped) > 3 else ""
    return f"no utterance of DATA {data.source} could be transcribed: {shown or 'none given'}{more}"


def _speechbrain_version() -> str:
    import speechbrain

    return str(speechbrain.__version__)
