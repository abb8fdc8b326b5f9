"""bench_peers.py's rows and table: paired speed ratios, WER and ΔWER per system of a group.

Runs on speechquant's side (it scores with speechquant's WER), beside the workers' modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from runner import SystemRun
from stats import rtf_interval, speedup_interval

from speechquant.core.data.datasets import Dataset
from speechquant.core.evaluation.metrics import WerResult, compute_wer
from speechquant.core.evaluation.stats import delta_wer_interval, wer_interval

REFERENCE_ROW = "faster-whisper int8"
ORT_INT8_ROW = "ONNX Runtime dynamic int8 (--avx2)"
#: The wav2vec2 group's second ORT int8 row, on CPUs with VNNI: int8 weights, as a user there
#: would quantize (``--avx2`` keeps uint8 weights).
ORT_VNNI_ROW = "ONNX Runtime dynamic int8 (--avx512_vnni)"


def summarize(
    runs: list[SystemRun], dataset: Dataset, durations: list[float], score: bool
) -> list[dict[str, Any]]:
    reference = next((r for r in runs if r.system.label == REFERENCE_ROW), runs[0])
    against = [reference] + [
        r for r in runs if r.system.label in (ORT_INT8_ROW, ORT_VNNI_ROW) and r is not reference
    ]
    scored = {id(r): _score(r, dataset) for r in runs} if score else {}
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "system": run.system.label,
            "rtf": vars(rtf_interval(run.seconds, np.array(durations))),
        }
        for other in against:  # paired: the same utterances in the same interleaved rounds
            key = f"speedup_vs_{other.system.label.replace(' ', '_')}"
            row[key] = vars(speedup_interval(other.seconds, run.seconds))
        row |= {
            "peak_rss_mb": run.peak_rss_mb,
            "load_seconds": run.load_seconds,
            "transcripts_same_every_round": run.stable_texts,
        }
        if score:
            wer, base = scored[id(run)], scored[id(reference)]
            errors, words = _errors(wer), [u.ref_words for u in wer.utterances]
            delta = delta_wer_interval(_errors(base), errors, words)
            row |= {
                "wer": wer.wer,
                "wer_ci": wer_interval(errors, words).to_json(),
                "errors": wer.errors,
                "ref_words": wer.ref_words,
                f"delta_wer_vs_{reference.system.label.replace(' ', '_')}": {
                    "delta": delta.delta,
                    "ci": delta.interval.to_json(),
                    "p_worse": delta.p_worse,
                },
            }
        rows.append(row)
    return rows


def _score(run: SystemRun, dataset: Dataset) -> WerResult:
    items = [(u.id, u.ref, text) for u, text in zip(dataset.utterances, run.texts, strict=True)]
    return compute_wer(items, "whisper")


def _errors(wer: WerResult) -> list[int]:
    return [u.insertions + u.deletions + u.substitutions for u in wer.utterances]


def table(rows: list[dict[str, Any]], score: bool) -> str:
    ratio_keys = [k for k in rows[0] if k.startswith("speedup_vs_")]
    ratio_key = ratio_keys[0]
    labels = {f"speedup_vs_{r['system'].replace(' ', '_')}": r["system"] for r in rows}
    reference = labels[ratio_key]
    head = "| system | RTF median [95 % interval] |" + "".join(
        f" x vs {labels[k]} |" for k in ratio_keys
    )
    head += (
        f" WER % [95 % interval] (errors / words) | ΔWER vs {reference} [95 %] |" if score else ""
    )
    columns = 3 + len(ratio_keys) + (2 if score else 0)
    lines = [head + " peak RSS |", "|---" * columns + "|"]
    for row in rows:
        rtf = row["rtf"]
        cells = [row["system"], f"{rtf['median']:.4f} [{rtf['low']:.4f}-{rtf['high']:.4f}]"]
        for key in ratio_keys:
            ratio = row[key]
            cells.append(f"{ratio['median']:.2f} [{ratio['low']:.2f}-{ratio['high']:.2f}]")
        if score:
            low, high = row["wer_ci"]
            delta = row[ratio_key.replace("speedup_vs_", "delta_wer_vs_")]
            d_low, d_high = delta["ci"]
            cells.append(
                f"{row['wer']:.2f} [{low:.2f}-{high:.2f}] ({row['errors']} / {row['ref_words']})"
            )
            cells.append(f"{delta['delta']:+.2f} [{d_low:+.2f}, {d_high:+.2f}]")
        cells.append(f"{row['peak_rss_mb']:.0f} MB")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
