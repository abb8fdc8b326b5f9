"""Typed benchmark results, their comparison against the float model, and stored runs.

:class:`BenchResult` is one model measured on one dataset; ``to_json()`` is the ``bench --json``
object. :func:`compare` is the one place where ΔWER, speed-up and size ratio are computed: ΔWER
with its paired-bootstrap interval from the per-utterance word counts, speed-ups only from two
results timed together in one interleaved session on one machine (see :mod:`.stats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from speechquant.core.errors import HistoryError
from speechquant.core.evaluation.load import LoadReport
from speechquant.core.evaluation.metrics import compute_wer
from speechquant.core.evaluation.stats import (
    delta_wer_interval,
    speedup_interval,
    wer_interval,
)
from speechquant.core.machine import MachineInfo


@dataclass
class UtteranceRow:
    """One utterance as measured: texts, times, and its word counts after normalization.

    ``timed`` is False for an utterance transcribed outside the timing session (on a cluster
    worker): its ``seconds`` is 0.0 and ``encoder_seconds`` None, and no RTF or speed-up uses it.
    """

    id: str
    ref: str
    hyp: str
    seconds: float
    audio_seconds: float
    encoder_seconds: float | None = None
    errors: int | None = None
    ref_words: int | None = None
    #: The windows (start, end seconds) long audio was transcribed in; None for one window.
    chunks: list[list[float]] | None = None
    timed: bool = True

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        keep = (*_UTTERANCE_BASE, "chunks")
        if self.timed:
            del data["timed"]  # written only when False: older results load as timed
        return {k: v for k, v in data.items() if v is not None or k in keep}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UtteranceRow:
        return cls(
            id=str(data["id"]),
            ref=str(data.get("ref") or ""),
            hyp=str(data.get("hyp") or ""),
            seconds=float(data.get("seconds") or 0.0),
            audio_seconds=float(data.get("audio_seconds") or 0.0),
            encoder_seconds=_opt_float(data.get("encoder_seconds")),
            errors=_opt_int(data.get("errors")),
            ref_words=_opt_int(data.get("ref_words")),
            chunks=data.get("chunks"),
            timed=bool(data.get("timed", True)),
        )


_UTTERANCE_BASE = ("id", "ref", "hyp", "seconds", "audio_seconds")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass
class Comparison:
    """A result against the float model: ΔWER, speed-ups and size ratio, with 95 % intervals.

    Speed-ups are ``None`` unless both were timed in one interleaved session (``paired``).
    """

    delta_wer: float
    delta_wer_ci: list[float] | None
    p_worse: float | None
    speedup: float | None
    speedup_ci: list[float] | None
    speedup_encoder: float | None
    speedup_encoder_ci: list[float] | None
    size_ratio: float
    significant_wer: bool
    significant_speed: bool
    baseline_started_at: str | None
    paired: bool
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comparison:
        """Parse a stored comparison; keys added since it was stored take their empty values."""
        missing = [name for name in _COMPARISON_REQUIRED if data.get(name) is None]
        if missing:
            raise HistoryError(
                f"stored comparison lacks {', '.join(missing)}; re-run the plan to compare it anew"
            )
        values = {
            **_COMPARISON_DEFAULTS,
            **{f.name: data[f.name] for f in fields(cls) if f.name in data},
        }
        values["warnings"] = list(values.get("warnings") or [])
        return cls(**values)


_COMPARISON_REQUIRED = ("delta_wer", "size_ratio")
_COMPARISON_DEFAULTS: dict[str, Any] = {
    "delta_wer_ci": None,
    "p_worse": None,
    "speedup": None,
    "speedup_ci": None,
    "speedup_encoder": None,
    "speedup_encoder_ci": None,
    "significant_wer": False,
    "significant_speed": False,
    "baseline_started_at": None,
    "paired": False,
}


@dataclass
class ClusterInfo:
    """Where a cluster result was transcribed and timed.

    Every utterance was transcribed by ``workers`` worker actors on ``nodes``, in ``shards``
    shards of ``shard_size``; the timing session ran on ``timing_node`` (``driver``: the
    process that ran the command, else the Ray resource label) on host ``timing_host``, over
    ``n_timed`` utterances. ``warnings`` hold what a reader must know (e.g. transcripts of the
    timing node that differ from the workers').
    """

    address: str
    workers: int
    worker_threads: int
    shard_size: int
    shards: int
    nodes: list[str]
    timing_node: str
    timing_host: str
    n_timed: int
    workers_replaced: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClusterInfo:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class BenchResult:
    """One model measured on one dataset (the ``bench --json`` object).

    ``rtf`` and ``rtf_encoder`` are over the timed utterances (all of them, except on a cluster,
    where ``cluster.n_timed`` were timed on one node); ``audio_seconds`` and the WER over all.
    """

    source: str
    plan: dict[str, Any] | None
    scheme_summary: dict[str, int]
    engine: str
    threads: int
    n_utterances: int
    audio_seconds: float
    wer: float
    insertions: int
    deletions: int
    substitutions: int
    ref_words: int
    rtf: float
    rtf_encoder: float | None
    warmup: int
    repeats: int
    model_bytes: int
    file_bytes: int
    peak_rss_bytes: int
    skipped: list[dict[str, Any]]
    utterances: list[UtteranceRow]
    torch_version: str
    speechbrain_version: str
    started_at: str
    wer_ci: list[float] | None = None
    machine: MachineInfo | None = None
    load: LoadReport | None = None
    timing_session: str | None = None
    """Shared by the results timed together, utterance by utterance, in one process."""
    comparison: Comparison | None = None
    cluster: ClusterInfo | None = None
    """Set on results of a cluster run (the key is absent from other results' JSON)."""
    language: str | None = None
    """The language token of a multilingual Whisper's decoder prompt (None: the model has none)."""

    @property
    def name(self) -> str:
        return str(self.plan.get("name") or "plan") if self.plan else "float32"

    @property
    def machine_key(self) -> str | None:
        return None if self.machine is None else self.machine.key

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "utterances":
                value = [u.to_json() for u in value]
            elif f.name == "cluster" and value is None:
                continue
            elif isinstance(value, (MachineInfo, LoadReport, Comparison, ClusterInfo)):
                value = value.to_json()
            data[f.name] = value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchResult:
        """Parse a ``bench --json`` object (runs stored before the added keys load too)."""
        missing = [f.name for f in fields(cls) if f.name not in data and f.name not in _OPTIONAL]
        if missing:
            raise HistoryError(
                f"result lacks {', '.join(missing)}; pass a bench --json object unchanged"
            )
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        values["utterances"] = [UtteranceRow.from_json(u) for u in data.get("utterances") or []]
        values["skipped"] = list(data.get("skipped") or [])
        values["scheme_summary"] = dict(data.get("scheme_summary") or {})
        machine, load, comparison = data.get("machine"), data.get("load"), data.get("comparison")
        values["machine"] = MachineInfo.from_json(machine) if machine else None
        values["load"] = LoadReport.from_json(load) if load else None
        values["comparison"] = Comparison.from_json(comparison) if comparison else None
        cluster = data.get("cluster")
        values["cluster"] = ClusterInfo.from_json(cluster) if cluster else None
        return cls(**values)


_OPTIONAL = {"wer_ci", "machine", "load", "timing_session", "comparison", "cluster", "language"}


@dataclass(frozen=True)
class RunMeta:
    """What the history keeps beside a result: its id, kind, group, cache key, settings, and
    the user's name, tags and note."""

    id: int
    kind: str
    group_id: str | None
    cache_key: str | None
    settings: dict[str, Any] | None
    recorded_at: str
    #: The user's name, tags and note for the run (``HistoryStore.annotate``).
    name: str | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["tags"] = list(self.tags)
        return data


@dataclass
class StoredRun:
    """A result from the run history with the history's metadata beside it."""

    result: BenchResult
    meta: RunMeta


def utterance_counts(
    result: BenchResult, normalizer: str = "whisper"
) -> dict[str, tuple[int, int]]:
    """Word errors and reference words per utterance id (recomputed for runs that lack them)."""
    rows = result.utterances
    if all(u.errors is not None and u.ref_words is not None for u in rows):
        return {u.id: (int(u.errors or 0), int(u.ref_words or 0)) for u in rows}
    scores = compute_wer([(u.id, u.ref, u.hyp) for u in rows], normalizer).utterances
    return {s.id: (s.errors, s.ref_words) for s in scores}


def with_wer_interval(result: BenchResult, normalizer: str = "whisper") -> BenchResult:
    counts = list(utterance_counts(result, normalizer).values())
    if counts:
        errors, words = zip(*counts, strict=True)
        result.wer_ci = wer_interval(errors, words).to_json()
    return result


def paired_timing(base: BenchResult, result: BenchResult) -> tuple[bool, list[str]]:
    """Whether the two were timed together (same session, same machine), and why not."""
    notes = []
    if base.machine_key and result.machine_key and base.machine_key != result.machine_key:
        notes.append(
            f"measured on different machines ({base.machine.label() if base.machine else '?'} "
            f"and {result.machine.label() if result.machine else '?'}): no speed-up is computed"
        )
        return False, notes
    if base.timing_session is None or base.timing_session != result.timing_session:
        notes.append(
            f"the float baseline was timed in another session (started {base.started_at}): "
            "no speed-up from its timings"
        )
        return False, notes
    return True, notes


def compare(
    base: BenchResult,
    result: BenchResult,
    *,
    timing_base: BenchResult | None = None,
    normalizer: str = "whisper",
) -> Comparison:
    """``result`` against the float ``base``: ΔWER on their common utterances, sizes, speed-ups.

    ``timing_base`` is the float model timed together with ``result`` when ``base`` (which
    supplies WER and transcripts, e.g. from the history) was not. Speed-ups come only from
    results of one timing session on one machine; otherwise they are ``None`` with a warning.
    A stored ``result.comparison`` keeps its speed-ups when no timing partner is given.
    """
    warnings: list[str] = []
    base_counts = utterance_counts(base, normalizer)
    counts = utterance_counts(result, normalizer)
    common = [i for i in counts if i in base_counts]
    if len(common) != len(counts) or len(common) != len(base_counts):
        warnings.append(
            f"the two runs share {len(common)} of {len(counts)} utterances; ΔWER is on those"
        )
    delta_ci = p_worse = None
    significant_wer = False
    delta = result.wer - base.wer
    if common:
        words = [counts[i][1] for i in common]
        delta_wer = delta_wer_interval(
            [base_counts[i][0] for i in common], [counts[i][0] for i in common], words
        )
        delta, delta_ci, p_worse = delta_wer.delta, delta_wer.interval.to_json(), delta_wer.p_worse
        significant_wer = delta_wer.significant
    timing = timing_base if timing_base is not None else base
    paired, notes = paired_timing(timing, result)
    stored = None
    if timing_base is None and base.plan is None and base.source == result.source:
        stored = result.comparison  # paired against the float model in its own session
    speed: tuple[float | None, list[float] | None, float | None, list[float] | None, bool] | None
    speed = _speedups(timing, result) if paired else None
    if paired and speed is None:
        paired = False
        notes.append("no utterance was timed for both: no speed-up is computed")
    if speed is None and stored is not None and stored.paired:
        speed = (stored.speedup, stored.speedup_ci, stored.speedup_encoder,
                 stored.speedup_encoder_ci, stored.significant_speed)  # fmt: skip
        paired, notes = True, []
        base_started = stored.baseline_started_at
    else:
        base_started = timing.started_at
    warnings += notes
    speedup, speedup_ci, encoder, encoder_ci, significant_speed = speed or (
        None, None, None, None, False,
    )  # fmt: skip
    return Comparison(
        delta_wer=delta,
        delta_wer_ci=delta_ci,
        p_worse=p_worse,
        speedup=speedup,
        speedup_ci=speedup_ci,
        speedup_encoder=encoder,
        speedup_encoder_ci=encoder_ci,
        size_ratio=base.model_bytes / result.model_bytes if result.model_bytes else float("nan"),
        significant_wer=significant_wer,
        significant_speed=significant_speed,
        baseline_started_at=base_started,
        paired=paired,
        warnings=warnings,
    )


def _speedups(
    base: BenchResult, result: BenchResult
) -> tuple[float, list[float], float | None, list[float] | None, bool] | None:
    """Speed-ups over the utterances both timed (None when there is none)."""
    by_id = {u.id: u for u in base.utterances if u.timed}
    pairs = [(by_id[u.id], u) for u in result.utterances if u.timed and u.id in by_id]
    if not pairs:
        return None
    end = speedup_interval([b.seconds for b, _ in pairs], [u.seconds for _, u in pairs])
    encoder = encoder_ci = None
    if all(b.encoder_seconds and u.encoder_seconds for b, u in pairs):
        enc = speedup_interval(
            [float(b.encoder_seconds or 0) for b, _ in pairs],
            [float(u.encoder_seconds or 0) for _, u in pairs],
        )
        encoder, encoder_ci = enc.ratio, enc.interval.to_json()
    return end.ratio, end.interval.to_json(), encoder, encoder_ci, end.significant


def comparison_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per ``bench --json`` object: WER, ΔWER, RTF, speed-up and size ratio against the first.

    Built on :func:`compare`; a speed-up that was not timed in the baseline's session is NaN.
    """
    typed = [BenchResult.from_json(r) for r in results]
    base = typed[0]
    rows = []
    for result in typed:
        comparison = compare(base, result)
        if result is base:
            comparison.speedup, comparison.speedup_encoder = 1.0, 1.0 if base.rtf_encoder else None
        rows.append(
            {
                "name": result.name,
                "wer": result.wer,
                "wer_ci": result.wer_ci,
                "delta_wer": comparison.delta_wer,
                "rtf": result.rtf,
                "rtf_encoder": result.rtf_encoder,
                "speedup": float("nan") if comparison.speedup is None else comparison.speedup,
                "encoder_speedup": comparison.speedup_encoder,
                "model_bytes": result.model_bytes,
                "size_ratio": comparison.size_ratio,
                "comparison": comparison,
            }
        )
    return rows
