"""Text and chart output of a plan search (shared by the CLI and the benchmark script)."""

from __future__ import annotations

from pathlib import Path

from speechquant.core.search.plan_search import SearchResult


def format_search(result: SearchResult) -> str:
    """The plans tried, the plan found and its figures on both splits."""
    head = (
        f"{'#':>3}  {'move':<40}{'ΔWER':>7}{'RTF':>8}{'enc RTF':>8}{'size MB':>8}"
        f"{'vs kept':>8}  kept"
    )
    lines = [head, "-" * len(head)]
    front = set(result.pareto())
    for i, step in enumerate(result.steps):
        m = step.measurement
        enc = "-" if m.rtf_encoder is None else f"{m.rtf_encoder:.4f}"
        mark = "yes" if step.accepted else ("over budget" if not step.within_budget else "no")
        mark = "found" if m is result.search else mark
        ratio = "-" if step.time_ratio is None else f"{step.time_ratio:.3f}"
        lines.append(
            f"{i + 1:>3}{'P' if i in front else ' '} {step.move[:40]:<40}{m.delta_wer:>+7.2f}"
            f"{m.rtf:>8.4f}{enc:>8}{m.model_bytes / 1e6:>8.1f}{ratio:>8}  {mark}"
        )
    lines.append(
        "P: on the WER-vs-RTF Pareto front of the plans tried (search split); vs kept: time "
        "against the plan kept then, in a paired timing"
    )
    lines.append(f"found plan ({result.plan.settings.engine}):")
    units = {u.name: u for u in result.sensitivity.units}
    for name, scheme in result.assignment.items():
        paths = units[name].paths
        where = paths[0] if len(paths) == 1 else f"{len(paths)} modules"
        lines.append(f"  {name}: {scheme}  ({where})")
    if not result.assignment:
        lines.append("  (nothing quantized: no plan within the budget beat the float model)")
    lines.append(
        f"{'split':<12}{'n':>4}{'float WER':>10}{'WER':>8}{'ΔWER':>7}{'RTF':>9}{'speed-up':>9}"
        f"{'enc x':>7}{'size MB':>9}"
    )
    for name, m, base in (
        ("search", result.search, result.search_baseline),
        ("evaluation", result.evaluation, result.evaluation_baseline),
    ):
        enc = "-" if m.encoder_speedup is None else f"{m.encoder_speedup:.2f}x"
        lines.append(
            f"{name:<12}{m.n_utterances:>4}{base.wer:>10.2f}{m.wer:>8.2f}{m.delta_wer:>+7.2f}"
            f"{m.rtf:>9.4f}{m.speedup:>8.2f}x{enc:>7}{m.model_bytes / 1e6:>9.1f}"
        )
    verdict = "within" if result.within_budget_on_evaluation else "OVER"
    lines.append(
        f"budget {result.settings.max_wer_increase:+.2f} WER points: {verdict} budget on the "
        "evaluation split"
    )
    return "\n".join(lines)


def plot_search(result: SearchResult, out: Path) -> Path:
    """WER vs RTF of every plan tried on the search split, with the Pareto front."""
    from speechquant.core.evaluation.plots import plot_wer_vs_rtf

    points = [
        {
            "source": step.measurement.result.get("source", ""),
            "rtf": step.measurement.rtf,
            "wer": step.measurement.wer,
            "plan": None
            if i == 0
            else {"name": f"#{i + 1}" + (" found" if step.measurement is result.search else "")},
        }
        for i, step in enumerate(result.steps)
    ]
    title = f"{points[0]['source']}: plans tried by the search (search split)"
    return plot_wer_vs_rtf(points, Path(out), title=title)
