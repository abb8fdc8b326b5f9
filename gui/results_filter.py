"""What the Results tab shows of the history: filters by kind, data subset, machine, tag and
text, and the facts only a run's stored result holds (intervals, machine, comparison). No Qt."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.history import HistoryStore, RunSummary
from speechquant.core.evaluation.runs import RunRow, setup_key

BENCHMARKS = "benchmarks"
ALL = "all"
KIND_CHOICES: dict[str, tuple[str, ...] | None] = {
    BENCHMARKS: ("baseline", "bench", "compare"),
    ALL: None,
    "baseline": ("baseline",),
    "bench": ("bench",),
    "compare": ("compare",),
    "sensitivity": ("sensitivity",),
    "search": ("search",),
}
"""Kind filter -> the stored kinds it keeps; the default hides sensitivity and search runs."""
KIND_LABELS = {BENCHMARKS: "Benchmarks (hide sensitivity/search)", ALL: "All kinds"}


def data_label(data: str | None) -> str:
    """A DATA spec as shown in the table: a path's last part (``-`` when not recorded)."""
    if not data:
        return "-"
    parts = data.replace("\\", "/").rstrip("/").rsplit("/", 2)
    tail = parts[-1] or data
    if tail.lower().startswith("manifest") and len(parts) > 1:
        return f"{parts[-2]}/{tail}"
    return tail


def subset_label(run: RunSummary) -> str:
    """The data and how much of it: ``speech/manifest.csv · 20 utts``."""
    utts = "-" if run.n_utterances is None else str(run.n_utterances)
    return f"{data_label(run.data)} · {utts} utts"


@dataclass(frozen=True)
class StoredFacts:
    """Figures a run's stored result may carry beyond the history's columns (absent: None)."""

    wer_ci: tuple[float, float] | None = None
    machine_key: str | None = None
    machine_label: str | None = None
    comparison: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    language: str | None = None
    """The decoder language a multilingual Whisper was run with."""

    @classmethod
    def of(cls, result: dict[str, Any]) -> StoredFacts:
        ci = result.get("wer_ci")
        wer_ci = None
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(v) for v in ci):
            wer_ci = (float(ci[0]), float(ci[1]))
        found = result.get("machine")
        machine: dict[str, Any] = found if isinstance(found, dict) else {}
        key = machine.get("key")
        comparison = result.get("comparison")
        load = result.get("load")
        language = result.get("language")
        return cls(
            wer_ci=wer_ci,
            machine_key=str(key) if key else None,
            machine_label=machine_label(machine) if machine else None,
            comparison=comparison if isinstance(comparison, dict) else {},
            load=load if isinstance(load, dict) else {},
            language=language if isinstance(language, str) and language else None,
        )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def machine_label(machine: dict[str, Any]) -> str:
    """``AMD EPYC 7B13 · 2 cores`` from a result's ``machine`` object."""
    found = machine.get("cpu")
    cpu: dict[str, Any] = found if isinstance(found, dict) else {}
    name = str(cpu.get("model") or cpu.get("arch") or "unknown CPU")
    cores = machine.get("cores")
    return f"{name} · {cores} cores" if cores else name


class FactsCache:
    """Stored facts per run id, read once from the history (results never change)."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history
        self._facts: dict[int, StoredFacts] = {}

    def get(self, run_id: int) -> StoredFacts:
        if run_id not in self._facts:
            try:
                self._facts[run_id] = StoredFacts.of(self.history.get_run(run_id))
            except SpeechquantError:
                return StoredFacts()
        return self._facts[run_id]

    def forget(self, run_id: int) -> None:
        self._facts.pop(run_id, None)


@dataclass
class RunFilter:
    """The Results tab's filters; empty strings mean "any"."""

    kind: str = BENCHMARKS
    subset: str = ""
    machine: str = ""
    tag: str = ""
    text: str = ""

    def keeps(self, row: RunRow, facts: StoredFacts) -> bool:
        kinds = KIND_CHOICES.get(self.kind)
        run = row.run
        if kinds is not None and run.kind not in kinds:
            return False
        if self.subset and subset_label(run) != self.subset:
            return False
        if self.machine and (facts.machine_label or "-") != self.machine:
            return False
        if self.tag and self.tag not in run.tags:
            return False
        if self.text:
            words = [run.plan_name or "float32", run.plan_summary, run.source, *run.tags]
            hay = " ".join([*words, run.name or "", run.note or ""])
            if self.text.lower() not in hay.lower():
                return False
        return True


def filter_rows(
    rows: Iterable[RunRow], flt: RunFilter, facts: Callable[[int], StoredFacts]
) -> list[RunRow]:
    return [r for r in rows if flt.keeps(r, facts(r.run.id))]


def front_group(row: RunRow, facts: StoredFacts) -> tuple[Any, ...]:
    """Runs share a Pareto front only when they share data, subset, threads and machine."""
    return (*setup_key(row.run), facts.machine_key)


def rows_csv(headers: Sequence[str], cells: Iterable[Sequence[str]]) -> str:
    """The table as CSV text (what the user sees, one line per visible run)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in cells:
        writer.writerow(row)
    return out.getvalue()
