"""Measure one model on one dataset: WER, end-to-end and encoder-only RTF, size, memory."""

from __future__ import annotations

import io
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import IO, Any, cast

import torch
from torch import nn

from speechquant.core.data.datasets import Dataset, SkippedItem, Utterance, iter_loaded
from speechquant.core.errors import DataError
from speechquant.core.evaluation.metrics import NORMALIZERS, compute_wer
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


def benchmark(
    model: LoadedModel,
    dataset: Dataset,
    settings: BenchSettings | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Transcribe ``dataset`` with ``model`` and return the ``bench --json`` object.

    Each utterance is transcribed ``repeats`` times (median time kept) after ``warmup``
    untimed runs on the first utterances. Unreadable audio is skipped and listed.
    """
    settings = settings or BenchSettings()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data = dataset.first(settings.limit) if settings.limit is not None else dataset
    rate = model.sample_rate
    stage = "benchmarking" + (f" {model.plan.name}" if model.plan is not None else " float")
    warm = data.first(settings.warmup) if settings.warmup else None
    if warm is not None:
        for _, wav in iter_loaded(warm, rate, cancel=cancel):
            try:
                model.transcribe(wav)
                if settings.encoder_rtf:
                    model.encode_windows(wav)
            except Exception:  # noqa: S112 - the same utterance is measured (and skipped) below
                continue
    rows: list[dict[str, Any]] = []
    encoder_seconds = 0.0
    for utterance, wav in iter_loaded(data, rate, progress=progress, cancel=cancel, stage=stage):
        check(cancel)
        try:
            row = _measure(model, utterance, wav, settings)
            if settings.encoder_rtf:
                _, seconds = _timed(lambda wav=wav: model.encode_windows(wav), settings.repeats)
                encoder_seconds += seconds
        except Exception as exc:  # one utterance's failure is its skip reason, not the run's end
            data.skipped.append(SkippedItem(utterance.id, transcription_failure(exc)))
            continue
        rows.append(row)
    if not rows:
        raise DataError(_nothing_transcribed(data))
    report(progress, len(data), len(data), stage)
    wer = compute_wer([(r["id"], r["ref"], r["hyp"]) for r in rows], settings.normalizer)
    audio_seconds = sum(r["audio_seconds"] for r in rows)
    plan = model.plan
    return {
        "source": model.source,
        "plan": plan.to_dict() if plan is not None else None,
        "scheme_summary": plan.summary() if plan is not None else {},
        "engine": torch.backends.quantized.engine,
        "threads": torch.get_num_threads(),
        "n_utterances": len(rows),
        "audio_seconds": audio_seconds,
        **wer.summary(),
        "rtf": sum(r["seconds"] for r in rows) / audio_seconds,
        "rtf_encoder": encoder_seconds / audio_seconds if settings.encoder_rtf else None,
        "warmup": settings.warmup,
        "repeats": settings.repeats,
        "model_bytes": model_bytes(model.mods),
        "file_bytes": state_dict_bytes(model.mods),
        "peak_rss_bytes": peak_rss_bytes(),
        "skipped": [s.to_dict() for s in data.skipped],
        "utterances": rows,
        "torch_version": torch.__version__,
        "speechbrain_version": _speechbrain_version(),
        "started_at": started_at,
    }


def _measure(
    model: LoadedModel, utterance: Utterance, wav: torch.Tensor, settings: BenchSettings
) -> dict[str, Any]:
    transcript, seconds = _timed(lambda: model.transcribe_windows(wav), settings.repeats)
    return {
        "id": utterance.id,
        "ref": utterance.ref,
        "hyp": transcript.text,
        "seconds": seconds,
        "audio_seconds": wav.numel() / model.sample_rate,
        "chunks": transcript.chunking(model.sample_rate),
    }


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
