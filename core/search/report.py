"""Text and chart output of a plan search (shared by the CLI and the benchmark script)."""

from __future__ import annotations

from pathlib import Path

from speechquant.core.evaluation.tables import (
    ci_text,
    delta_text,
    interval_significant,
    significance,
    speedup_text,
    words_note,
)
from speechquant.core.search.plan_search import SearchResult


def format_search(result: SearchResult) -> str:
    """The plans tried, the plan found and its figures on both splits."""
    head = (
        f"{'#':>3}  {'move':<40}{'ΔWER':>7}{'ΔWER hi':>8}{'speed-up':>9}{'size MB':>8}"
        f"{'vs kept [95% CI]':>24}  kept"
    )
    lines = [head, "-" * len(head)]
    front = set(result.pareto())
    for i, step in enumerate(result.steps):
        m = step.measurement
        mark = "yes" if step.accepted else ("over budget" if not step.within_budget else "no")
        mark = "found" if m is result.search else mark
        vs_kept = "-"
        if step.time_ratio is not None:
            vs_kept = speedup_text(
                1.0 / step.time_ratio,
                step.vs_kept_ci,
                interval_significant(step.vs_kept_ci, 1.0),
            )
        speed = "-" if m.speedup != m.speedup else f"{m.speedup:.2f}x"
        lines.append(
            f"{i + 1:>3}{'P' if i in front else ' '} {step.move[:40]:<40}{m.delta_wer:>+7.2f}"
            f"{m.delta_wer_high():>+8.2f}{speed:>9}{m.model_bytes / 1e6:>8.1f}{vs_kept:>24}  {mark}"
        )
    lines.append(
        "P: on the WER-vs-speed Pareto front of the plans tried (search split); ΔWER hi: upper "
        "end of its 95 % interval; speed-up: paired against float; vs kept: speed-up over the "
        "plan kept then, in a paired timing (kept only when its interval lies above 1)"
    )
    step = ", decoder step scripted" if result.plan.settings.decoder_step == "scripted" else ""
    lines.append(f"found plan ({result.plan.settings.engine}{step}):")
    units = {u.name: u for u in result.sensitivity.units}
    for name, scheme in result.assignment.items():
        paths = units[name].paths
        where = paths[0] if len(paths) == 1 else f"{len(paths)} modules"
        lines.append(f"  {name}: {scheme}  ({where})")
    if not result.assignment and not step:
        lines.append("  (nothing quantized: no plan within the budget beat the float model)")
    ev, base = result.evaluation, result.evaluation_baseline
    c = ev.comparison
    verdict = "within" if result.within_budget_on_evaluation else "OVER"
    speed = speedup_text(ev.speedup, c.speedup_ci if c else None, significance(c).speed)
    encoder = speedup_text(
        ev.encoder_speedup, c.speedup_encoder_ci if c else None, significance(c).encoder
    )
    lines.append(
        f"RESULT (evaluation split, {ev.n_utterances} utterances): WER {ev.wer:.2f} % "
        f"{ci_text(ev.wer_ci)} vs float {base.wer:.2f} %; ΔWER {delta_text(c)}"
        + ("" if c is None or c.p_worse is None else f", P(worse) {c.p_worse:.2f}")
        + f"; speed-up {speed}"
        + f"; encoder {encoder}"
        + f"; {ev.model_bytes / 1e6:.1f} MB"
    )
    lines.append(
        f"budget rule {result.settings.budget_rule}: {verdict} budget on the evaluation split "
        f"(ΔWER {ev.delta_wer:+.2f}, upper end {ev.delta_wer_high():+.2f})"
    )
    for name, m in (("search", result.search), ("evaluation", ev)):
        if m.bench is not None:
            lines.append(f"  {name} split: {words_note(m.bench.ref_words, m.n_utterances)}")
    found = result.search
    fc = found.comparison
    lines.append(
        f"search split figure (used to choose, not the result; {found.n_utterances} "
        f"utterances): ΔWER {delta_text(fc)}, speed-up "
        f"{speedup_text(found.speedup, fc.speedup_ci if fc else None, significance(fc).speed)}"
    )
    return "\n".join(lines)


def plot_search(result: SearchResult, out: Path) -> Path:
    """WER vs RTF of every plan tried on the search split, with the Pareto front."""
    from speechquant.core.evaluation.plots import plot_wer_vs_rtf

    points = [
        {
            "source": step.measurement.result.get("source", ""),
            "rtf": step.measurement.objective("rtf"),
            "wer": step.measurement.wer,
            "plan": None
            if i == 0
            else {"name": f"#{i + 1}" + (" found" if step.measurement is result.search else "")},
        }
        for i, step in enumerate(result.steps)
    ]
    title = f"{points[0]['source']}: plans tried by the search (search split)"
    return plot_wer_vs_rtf(points, Path(out), title=title)
