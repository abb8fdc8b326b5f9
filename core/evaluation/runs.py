"""Runs paired with the float baseline they are measured against, and the figures that follow
(ΔWER, speed-up, size ratio), for ``speechquant history`` and the desktop app's Results tab."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from speechquant.core.evaluation.history import RunSummary


def is_baseline(run: RunSummary) -> bool:
    return run.kind == "baseline" or run.plan_name is None


@dataclass(frozen=True)
class RunRow:
    """A stored run with the float baseline it is measured against (None for a baseline)."""

    run: RunSummary
    baseline: RunSummary | None

    @property
    def label(self) -> str:
        return f"#{self.run.id} {self.run.plan_name or 'float32'}"

    @property
    def reference(self) -> RunSummary | None:
        """What the ratios compare with: the baseline, itself for a baseline, else None."""
        return self.run if is_baseline(self.run) else self.baseline

    @property
    def speedup(self) -> float | None:
        base = self.reference
        if base is None or not self.run.rtf or base.rtf is None:
            return None
        return base.rtf / self.run.rtf

    @property
    def size_ratio(self) -> float | None:
        base = self.reference
        if base is None or not self.run.model_bytes or base.model_bytes is None:
            return None
        return base.model_bytes / self.run.model_bytes

    @property
    def delta_wer(self) -> float | None:
        base = self.reference
        if base is None or self.run.wer is None or base.wer is None:
            return None
        return self.run.wer - base.wer


def comparable(run: RunSummary, base: RunSummary) -> bool:
    """Measured on the same setup: same source, DATA, threads and utterance count.

    Runs stored before the DATA was recorded (``data`` None) only pair with each other.
    """
    return (
        base.source == run.source
        and base.data == run.data
        and base.threads == run.threads
        and base.n_utterances == run.n_utterances
    )


def find_baseline(run: RunSummary, runs: Sequence[RunSummary]) -> RunSummary | None:
    """The float run ``run`` compares with: one of its group, else the latest comparable one."""
    if is_baseline(run):
        return None
    floats = [r for r in runs if is_baseline(r) and r.source == run.source]
    if run.group_id:
        grouped = [r for r in floats if r.group_id == run.group_id]
        if grouped:
            return max(grouped, key=lambda r: r.id)
    same = [r for r in floats if comparable(run, r)]
    earlier = [r for r in same if r.id < run.id]
    pool = earlier or same
    return max(pool, key=lambda r: r.id) if pool else None


def run_rows(runs: Sequence[RunSummary]) -> list[RunRow]:
    return [RunRow(run, find_baseline(run, runs)) for run in runs]


def setup_key(run: RunSummary) -> tuple[str | None, int | None, int | None]:
    """What must match for two runs' figures to sit on one chart front: the DATA, the subset
    of it (utterance count) and the threads. (The machine is added by callers that know it.)"""
    return (run.data, run.n_utterances, run.threads)
