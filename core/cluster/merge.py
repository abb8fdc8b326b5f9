"""One timing session and the shards of the same runs, merged into one result per run.

The shards give every utterance's transcript (and word counts, audio seconds, windows); the
timing session, run on one node over a subset of the utterances, gives the timings. A row that
the session did not time is marked ``timed=False`` and carries no seconds, so no RTF or
speed-up ever divides times from different nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from speechquant.core.data.datasets import Dataset
from speechquant.core.evaluation.bench import BenchSettings, row_figures
from speechquant.core.evaluation.results import (
    BenchResult,
    ClusterInfo,
    UtteranceRow,
    with_wer_interval,
)


@dataclass
class ShardRows:
    """What the workers sent back for one run: rows by id, and why other utterances are missing."""

    name: str
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Audio a worker could not read, by id."""
    failed: dict[str, str] = field(default_factory=dict)
    """Transcriptions that failed, by id."""
    nodes: set[str] = field(default_factory=set)

    def add(self, out: dict[str, Any]) -> None:
        self.rows.update((row["id"], row) for row in out["rows"])
        self.skipped.update(out["skipped"])
        self.failed.update(out["failed"])
        self.nodes.add(out["node"])


def kept_ids(data: Dataset, shards: Sequence[ShardRows]) -> list[str]:
    """The ids every run transcribed, in the dataset's order (rows stay paired across runs)."""
    return [i for i in data.ids if all(i in s.rows for s in shards)]


def skipped_items(
    data: Dataset, shards: Sequence[ShardRows], audio_skipped: dict[str, str]
) -> list[dict[str, str]]:
    """The dataset's own skipped items, then each utterance no run could use, in data order."""
    found = [s.to_dict() for s in data.skipped]
    kept = set(kept_ids(data, shards))
    for i in data.ids:
        if i in kept:
            continue
        reason = audio_skipped.get(i) or next((s.skipped[i] for s in shards if i in s.skipped), "")
        if not reason:
            failed = next(s for s in shards if i in s.failed)
            who = f"{failed.name}: " if len(shards) > 1 else ""
            reason = who + failed.failed[i]
        found.append({"id": i, "reason": reason})
    return found


def merge_run(
    timed: BenchResult,
    shard: ShardRows,
    ids: Sequence[str],
    skipped: list[dict[str, str]],
    settings: BenchSettings,
    info: ClusterInfo,
    started_at: str,
) -> BenchResult:
    """``timed`` (this run in the timing session) with the rows of every utterance in ``ids``.

    Transcripts come from the shards, seconds only from the session; a timed utterance whose
    session transcript differs from the shard's adds a warning to ``info``.
    """
    session = {u.id: u for u in timed.utterances}
    rows = []
    differ = []
    for i in ids:
        got = shard.rows[i]
        clock = session.get(i)
        rows.append(
            UtteranceRow(
                id=i,
                ref=got["ref"],
                hyp=got["hyp"],
                seconds=clock.seconds if clock is not None else 0.0,
                audio_seconds=got["audio_seconds"],
                encoder_seconds=clock.encoder_seconds if clock is not None else None,
                chunks=got["chunks"],
                timed=clock is not None,
            )
        )
        if clock is not None and clock.hyp != got["hyp"]:
            differ.append(i)
    warnings = list(info.warnings)
    if differ:
        warnings.append(
            f"{timed.name}: the timing node's transcripts differ from the workers' on "
            f"{len(differ)} timed utterance(s) ({', '.join(differ[:3])}): decoding is not "
            "deterministic across nodes or thread counts; WER is from the workers' transcripts"
        )
    info = replace(
        info, nodes=sorted(shard.nodes), n_timed=sum(r.timed for r in rows), warnings=warnings
    )
    result = replace(
        timed,
        **row_figures(rows, settings),
        utterances=rows,
        skipped=skipped,
        started_at=started_at,
        wer_ci=None,
        comparison=None,
        cluster=info,
    )
    return with_wer_interval(result, settings.normalizer)
