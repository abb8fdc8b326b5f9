"""The run history as an aligned text table (``speechquant history``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from speechquant.core.evaluation.history import RunSummary, _parse_time
from speechquant.core.evaluation.runs import run_label, run_rows


def _local_time(text: str) -> str:
    try:
        stamp = _parse_time(text)
    except ValueError:
        return text.replace("T", " ")[:16]
    return (stamp.astimezone() if stamp.tzinfo else stamp).strftime("%Y-%m-%d %H:%M")


def _fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_runs_table(
    runs: Sequence[RunSummary],
    comparison_of: Callable[[int], Mapping[str, Any] | None] | None = None,
) -> str:
    """The runs as an aligned text table (id, time, kind, source, plan, the user's name and
    tags, engine, threads, WER %, ΔWER against the float baseline ("vs" gives its id and name,
    as :func:`~speechquant.core.evaluation.runs.run_label` does), the speed-up stored with the
    run from its paired timing ("-" when it has none; ``comparison_of(run id)`` gives it), RTF,
    size MB)."""
    if not runs:
        return "No runs recorded yet; run `speechquant bench` or `speechquant compare`."
    header = ("id", "time", "kind", "source", "plan", "name", "tags", "engine", "threads", "WER %", "ΔWER", "speed-up", "vs", "RTF", "size MB")  # fmt: skip
    right = {0, 8, 9, 10, 11, 13, 14}
    rows = [header]
    for paired in run_rows(runs, comparison_of):
        run, base = paired.run, paired.baseline
        when = _local_time(run.started_at)
        source = run.source if len(run.source) <= 48 else "…" + run.source[-47:]
        plan = run.plan_name or "float"
        if run.plan_name and run.plan_summary != "float":
            plan += f" ({run.plan_summary})"
        rows.append((
            str(run.id), when, run.kind, source, plan, _short(run.name or "-", 32),
            _short(", ".join(run.tags) or "-", 32), run.engine or "-",
            "-" if run.threads is None else str(run.threads), _fmt(run.wer, ".2f"),
            "-" if base is None else _fmt(paired.delta_wer, "+.2f"),
            "-" if base is None or paired.speedup is None else f"{paired.speedup:.2f}x",
            "-" if base is None else _short(run_label(base), 32),
            _fmt(run.rtf, ".3f"), _fmt(run.model_bytes, ".1f", 1e-6),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
