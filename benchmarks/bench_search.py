"""Sensitivity analysis and plan search on real models, checked against the single-scheme presets.

Usage: python benchmarks/bench_search.py [--data PATH/manifest.csv] [--max-wer-increase 0.5]
       [--search-n 20] [--calib-n 8] [--rounds 3] [--threads T] [--skip-whisper] [--skip-large]
       [--history DB]

1. demo:whisper-tiny-en on the real speech set: the sensitivity table (with leave-one-out) and the
   search (objective: end-to-end RTF) on the search split, then the found plan, the float model
   and the presets all-dynamic (x86 and onednn) and bf16 re-measured by the bench path (``benchmark``) on the
   disjoint evaluation split (with, for reference, all-dynamic plus the int8 tied output
   projection written by hand), all timed together utterance by utterance in alternating order
   (``--rounds`` repeats each, median kept), speed-ups with their 95 % intervals. The found plan must stay within the budget there and be
   faster than every preset that also does.
2. replica:wav2vec2-large (random weights: speed only, unlimited budget) with one unit per family
   (all 24 encoder layers together): the search, then the encoder forward of fp32, the presets
   (x86 and onednn) and the found plan timed interleaved in this process; the found plan must be
   at least as fast as the best preset.

Measurements go to a fresh run history in a temporary folder unless ``--history`` names one
(then a rerun reuses what is stored there).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SPEECHQUANT_NO_PROGRESS", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from speechquant.core.data.datasets import Dataset, iter_loaded, open_dataset  # noqa: E402
from speechquant.core.evaluation.bench import (  # noqa: E402
    BenchSettings,
    model_bytes,
    paired_benchmark,
)
from speechquant.core.evaluation.experiment import quantize_model  # noqa: E402
from speechquant.core.evaluation.history import HistoryStore  # noqa: E402
from speechquant.core.evaluation.results import BenchResult, compare  # noqa: E402
from speechquant.core.evaluation.tables import delta_text, significance, speedup_text  # noqa: E402
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.paths import shared_speech_dir  # noqa: E402
from speechquant.core.quantization.apply import apply_plan, set_engine  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402
from speechquant.core.quantization.presets import make_preset  # noqa: E402
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree  # noqa: E402
from speechquant.core.search.plan_search import SearchSettings, run_search  # noqa: E402
from speechquant.core.search.report import format_search  # noqa: E402
from speechquant.core.search.sensitivity import format_sensitivity  # noqa: E402
from speechquant.core.search.splits import make_splits  # noqa: E402
from speechquant.core.search.units import default_units, merge_families  # noqa: E402
from speechquant.core.sources import open_model  # noqa: E402

PRESETS = ("all-dynamic", "bf16")
HEAD = "whisper.model.decoder.embed_tokens"
REFERENCE = "all-dyn + int8 head"
"""Not a preset: all-dynamic plus the tied output projection, as a user would write it by hand."""


def _say(text: str) -> None:
    print(text, flush=True)


def whisper(args: argparse.Namespace, history: HistoryStore) -> bool:
    model = open_model("demo:whisper-tiny-en")
    dataset = open_dataset(args.data)
    bench = BenchSettings(warmup=2, repeats=1, calib_n=args.calib_n, threads=args.threads)
    settings = SearchSettings(
        max_wer_increase=args.max_wer_increase,
        objective="rtf",
        search_n=args.search_n,
        max_evals=args.max_evals,
        duel_rounds=args.duel_rounds,
        leave_one_out=True,
    )
    start = time.perf_counter()
    result = run_search(model, dataset, settings, history, bench=bench)
    _say(
        f"\n== demo:whisper-tiny-en, {len(dataset)} utterances of {args.data}; "
        f"{torch.get_num_threads()} threads; search took {time.perf_counter() - start:.0f} s"
    )
    _say(
        f"search split {len(result.sensitivity.ids)} utterances, evaluation split "
        f"{len(result.eval_ids)}, calibration {', '.join(result.calibration_ids) or '-'}"
    )
    _say(format_sensitivity(result.sensitivity, worst=2))
    _say("")
    _say(format_search(result))

    # the bench path on the evaluation split: float, presets and the found plan
    splits = make_splits(dataset, settings.search_n, None, bench)
    evaluation = splits.evaluation
    assert evaluation.ids == result.eval_ids
    tree = build_tree(model.mods)
    plans: list[tuple[str, Plan | None]] = [("float32", None)]
    plans += [(name, make_preset(name, tree)) for name in PRESETS]
    onednn = QuantSettings(engine="onednn")
    plans.append(("all-dynamic (onednn)", make_preset("all-dynamic", tree, onednn)))
    by_hand = make_preset("all-dynamic", tree)
    by_hand.entries[HEAD] = "dynamic"
    plans.append((REFERENCE, by_hand))
    plans.append(("found (search)", result.plan))
    figures = evaluate_interleaved(model, plans, evaluation, bench, args.rounds)
    base = figures["float32"]
    _say(
        f"\nre-measured by the bench path (paired_benchmark()) on the evaluation split "
        f"({len(evaluation)} utterances, {base.audio_seconds:.0f} s): every plan timed "
        f"utterance by utterance in alternating order, median of {args.rounds} repeats"
    )
    _say(
        f"{'plan':<22}{'WER %':>7}{'ΔWER [95% CI]':>27}{'budget':>8}{'RTF':>9}"
        f"{'speed-up [95% CI]':>30}{'size MB':>9}"
    )
    compared = {name: compare(base, figures[name], timing_base=base) for name, _ in plans}
    for name, _ in plans:
        r, c = figures[name], compared[name]
        ok = "ok" if c.delta_wer <= args.max_wer_increase + 1e-9 else "over"
        _say(
            f"{name:<22}{r.wer:>7.2f}{delta_text(c):>27}{ok:>8}{r.rtf:>9.4f}"
            f"{speedup_text(c.speedup, c.speedup_ci, significance(c).speed):>30}"
            f"{r.model_bytes / 1e6:>9.1f}"
        )
    found = compared["found (search)"]
    within = found.delta_wer <= args.max_wer_increase + 1e-9
    presets = [name for name, _ in plans[1:-1] if name != REFERENCE]
    rivals = [n for n in presets if compared[n].delta_wer <= args.max_wer_increase + 1e-9]
    faster = all((found.speedup or 0) >= (compared[n].speedup or 0) for n in rivals)
    _say(
        f"found plan within budget on the evaluation split: {'yes' if within else 'NO'}; "
        f"faster than every preset within budget ({', '.join(rivals) or 'none'}): "
        f"{'yes' if faster else 'NO'}"
    )
    return within and faster


def evaluate_interleaved(
    model: LoadedModel,
    plans: list[tuple[str, Plan | None]],
    evaluation: Dataset,
    bench: BenchSettings,
    rounds: int,
) -> dict[str, BenchResult]:
    """Each plan's result on ``evaluation``, all timed together by :func:`paired_benchmark`.

    Every utterance is transcribed by every plan back to back (order reversed on every other
    utterance), ``rounds`` times each (median kept). Static entries calibrate as ``bench``
    would, on utterances outside ``evaluation``.
    """
    variants = [
        model if plan is None else quantize_model(model, plan, evaluation, bench)[0]
        for _, plan in plans
    ]
    results = paired_benchmark(variants, evaluation, replace(bench, repeats=max(1, rounds)))
    return {name: result for (name, _), result in zip(plans, results, strict=True)}


def _speech_like(seconds: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    n = int(seconds * 16000)
    t = torch.arange(n) / 16000
    envelope = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t)
    return envelope * (
        0.2 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(n, generator=generator)
    )


def encoder_speedups(
    model: LoadedModel, plans: list[tuple[str, Plan | None]], calib: list[torch.Tensor], reps: int
) -> list[tuple[str, float, int]]:
    """Median encoder forward time of each variant on a 5 s input, interleaved."""
    wav = _speech_like(5.0, 99)
    variants = []
    for name, plan in plans:
        built = model if plan is None else apply_plan(model, plan, calib)
        variants.append((name, built, plan.settings.engine if plan else "x86", []))
    for _, built, engine, _ in variants:
        set_engine(engine)
        built.encode(wav)
    for _ in range(reps):
        for _, built, engine, times in variants:
            set_engine(engine)
            start = time.perf_counter()
            built.encode(wav)
            times.append(time.perf_counter() - start)
    return [(name, statistics.median(t), model_bytes(b.mods)) for name, b, _, t in variants]


def large(args: argparse.Namespace, history: HistoryStore) -> bool:
    model = open_model("replica:wav2vec2-large")
    full = open_dataset(args.data)
    short = [u for u in full if u.id.startswith("spk")]
    dataset = Dataset(full.source, full.form, short, [])
    bench = BenchSettings(warmup=1, repeats=1, calib_n=2, threads=args.threads)
    tree = build_tree(model.mods)
    units = merge_families(default_units(model.mods, tree), tree)
    settings = SearchSettings(
        max_wer_increase=float("inf"), objective="rtf", search_n=3, eval_n=3, max_evals=20
    )
    start = time.perf_counter()
    result = run_search(model, dataset, settings, history, bench=bench, units=units)
    _say(
        f"\n== replica:wav2vec2-large (speed only, budget unlimited), units per family; "
        f"search took {time.perf_counter() - start:.0f} s"
    )
    _say(format_sensitivity(result.sensitivity, worst=0))
    _say("")
    _say(format_search(result))
    calib_set = Dataset(full.source, full.form, full.utterances[:2], [])
    calib = [w for _, w in iter_loaded(calib_set, model.sample_rate)]
    onednn = QuantSettings(engine="onednn")
    plans: list[tuple[str, Plan | None]] = [("fp32", None)]
    plans += [(f"{name} (x86)", make_preset(name, tree)) for name in ("tutorial", *PRESETS)]
    plans += [(f"{n} (onednn)", make_preset(n, tree, onednn)) for n in ("tutorial", "all-dynamic")]
    plans.append(("found (search)", result.plan))
    timings = encoder_speedups(model, plans, calib, args.encoder_repeats)
    base = timings[0][1]
    _say(
        f"\nencoder forward on 5 s, {torch.get_num_threads()} threads, median of "
        f"{args.encoder_repeats} interleaved repeats (one process)"
    )
    _say(f"{'variant':<20}{'median s':>10}{'speed-up':>10}{'model MB':>10}")
    for name, median, size in timings:
        _say(f"{name:<20}{median:>10.3f}{base / median:>9.2f}x{size / 1e6:>10.1f}")
    found = timings[-1][1]
    best_preset = min(t for _, t, _ in timings[1:-1])
    ok = found <= best_preset * 1.02
    _say(
        f"found plan at least as fast as the best preset (2% timing tolerance): "
        f"{'yes' if ok else 'NO'} ({base / found:.2f}x vs {base / best_preset:.2f}x)"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speech = shared_speech_dir()
    parser.add_argument("--data", default=str(speech / "manifest.csv") if speech else None)
    parser.add_argument("--max-wer-increase", type=float, default=0.5)
    parser.add_argument("--search-n", type=int, default=20)
    parser.add_argument("--calib-n", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-evals", type=int, default=24)
    parser.add_argument("--duel-rounds", type=int, default=2)
    parser.add_argument("--encoder-repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads (default: torch's, %(default)s here); 1 is steadier where other "
        "processes share the cores (a multi-threaded run then stalls in OpenMP barriers)",
    )
    parser.add_argument("--history", type=Path, help="run history to use (default: a fresh one)")
    parser.add_argument("--skip-whisper", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    if args.data is None:
        parser.error("the real speech set is absent; pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        history = HistoryStore(args.history or Path(tmp) / "history.sqlite")
        results = []
        if not args.skip_whisper:
            results.append(whisper(args, history))
        if not args.skip_large:
            results.append(large(args, history))
    _say(f"\nall checks passed: {'yes' if all(results) else 'NO'}")


if __name__ == "__main__":
    main()
