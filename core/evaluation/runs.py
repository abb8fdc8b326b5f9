"""Runs paired with the float baseline they are measured against, and the figures that follow
(ΔWER, speed-up, size ratio), for ``speechquant history`` and the desktop app's Results tab.

ΔWER and the size ratio are read against the float baseline found in the history. The speed-up
is never a division of two stored RTFs (they may come from different sessions, loads or
machines): it is the one stored with the run, from the float model timed together with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from speechquant.core.evaluation.history import RunSummary
from speechquant.core.evaluation.history_rows import plan_columns


def is_baseline(run: RunSummary) -> bool:
    return run.kind == "baseline" or run.plan_name is None


@dataclass(frozen=True)
class RunRow:
    """A stored run with the float baseline it is measured against (None for a baseline)."""

    run: RunSummary
    baseline: RunSummary | None
    comparison: Mapping[str, Any] | None = None
    """The run's stored ``comparison`` (its paired speed-ups); None when it has none."""

    @property
    def label(self) -> str:
        return run_label(self.run)

    @property
    def reference(self) -> RunSummary | None:
        """What the ratios compare with: the baseline, itself for a baseline, else None."""
        return self.run if is_baseline(self.run) else self.baseline

    @property
    def speedup(self) -> float | None:
        """1.0 for a baseline; for a plan the paired speed-up stored with it, else None."""
        if is_baseline(self.run):
            return 1.0
        comparison = self.comparison or {}
        value = comparison.get("speedup")
        if not comparison.get("paired") or not _is_number(value):
            return None
        return float(value or 0.0)

    @property
    def speedup_ci(self) -> tuple[float, float] | None:
        """The paired speed-up's 95 % interval, when stored."""
        ci = (self.comparison or {}).get("speedup_ci") if self.speedup is not None else None
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_is_number(v) for v in ci):
            return float(ci[0]), float(ci[1])
        return None

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


def run_label(run: RunSummary | RunRow | Mapping[str, Any]) -> str:
    """How both front ends name a stored run: ``#12 int8 encoder`` when the user named it,
    else ``#12`` and its plan (or preset), ``#12 float32`` for a float baseline.

    ``run`` is a :class:`RunSummary`, a :class:`RunRow`, a ``HistoryStore.get_run`` result
    (its ``history`` entry gives the id and name) or a ``RunSummary.as_dict()``.
    """
    if isinstance(run, RunRow):
        run = run.run
    if isinstance(run, RunSummary):
        run_id, name, plan = run.id, run.name, run.plan_name
    elif isinstance(run, Mapping):
        meta = run.get("history")
        if isinstance(meta, Mapping):
            run_id, name, plan = meta.get("id"), meta.get("name"), plan_columns(run)[0]
        else:
            run_id, name, plan = run.get("id"), run.get("name"), run.get("plan_name")
    else:
        raise TypeError(f"run_label takes a stored run, not {type(run).__name__}")
    if not isinstance(run_id, int) or isinstance(run_id, bool):
        raise TypeError(f"run_label takes a stored run; this one has no history id ({run_id!r})")
    return f"#{run_id} {name or plan or 'float32'}"


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


def run_rows(
    runs: Sequence[RunSummary],
    comparison_of: Callable[[int], Mapping[str, Any] | None] | None = None,
) -> list[RunRow]:
    """Each run with its float baseline and (from ``comparison_of(run id)``) its stored
    comparison; without ``comparison_of`` no plan has a speed-up."""
    return [
        RunRow(
            run,
            find_baseline(run, runs),
            None if comparison_of is None or is_baseline(run) else comparison_of(run.id),
        )
        for run in runs
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def setup_key(run: RunSummary) -> tuple[str | None, int | None, int | None]:
    """What must match for two runs' figures to sit on one chart front: the DATA, the subset
    of it (utterance count) and the threads. (The machine is added by callers that know it.)"""
    return (run.data, run.n_utterances, run.threads)
