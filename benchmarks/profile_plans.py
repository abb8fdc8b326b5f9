"""Where the time goes when float32 and the best plan transcribe, stage by stage, on this CPU.

Usage: python benchmarks/profile_plans.py [--source demo:whisper-tiny-en] [--language en]
       [--data manifest.csv] [--limit 8] [--warmup 1] [--threads T] [--plan PLAN.json]
       [--top-ops 12] [--candidates] [--candidate-limit 20] [--variants a,b] [--json out.json]

The first ``--limit`` LJSpeech and Harvard utterances of the shared speech set (spread evenly over
the sorted ids; all of a DATA without those folders) are transcribed by float32 and by the best plan, utterance by utterance in
alternating order after ``--warmup`` untimed ones. Each transcription's wall time is split by
forward hooks and method wrappers (``time.perf_counter``, see ``profiling/stage_clock.py``) into
features, encoder forward, decoder steps (their number, mean time per step, of which the
decoder layers and the tied logits head), the search loop and the rest; a wav2vec2 CTC model into
its conv front end, feature projection, transformer encoder, head and the rest.

The best plan: for Whisper ``all-dynamic`` plus int8 of the tied output projection
(``whisper.model.decoder.embed_tokens``), the search's plan; for other models ``tutorial``
(static entries calibrate on ``--calib-n`` utterances outside the profiled ones). ``--plan``
profiles a saved plan instead.

``--top-ops K`` adds torch.profiler's K operators with the most self CPU time on the first
utterance. ``--candidates`` (Whisper) times variants of the best plan against it with the
project's paired timing (``paired_benchmark``, interleaved, one process) on ``--candidate-limit``
utterances: the search at 1 thread, ``torch.inference_mode``, suppression indices built once,
static int8 conv front end, decoder layers float32; speed-ups with 95 % bootstrap intervals, WER, identical transcripts.
Named in ``--variants`` only: the later decoder steps captured as one module with explicit
key/value tensors (``profiling/captured_step.py``), run eagerly (``step-eager``), scripted and
frozen by TorchScript (``step-script``; ``step-ofi`` adds ``optimize_for_inference``) or under
``torch.compile`` (``step-compile``); each prints its capture time and first transcription.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent / "profiling"))

import torch  # noqa: E402
from candidates import (  # noqa: E402
    CAPTURES,
    InferenceModeModel,
    captured_step,
    decoder_threads,
    float_decoder_layers,
    lean_suppression,
    renamed,
    static_front_end,
)
from stage_clock import Row, UtteranceStages, breakdown, instrumented  # noqa: E402

from speechquant.core.cluster.settings import timing_ids  # noqa: E402
from speechquant.core.data.datasets import Dataset, iter_loaded, open_dataset  # noqa: E402
from speechquant.core.evaluation.bench import (  # noqa: E402
    BenchSettings,
    paired_benchmark,
    timing_order,
)
from speechquant.core.evaluation.experiment import quantize_model  # noqa: E402
from speechquant.core.evaluation.load import LoadMonitor  # noqa: E402
from speechquant.core.evaluation.metrics import compute_wer  # noqa: E402
from speechquant.core.evaluation.stats import speedup_interval  # noqa: E402
from speechquant.core.machine import this_machine  # noqa: E402
from speechquant.core.model.loaded import LoadedModel  # noqa: E402
from speechquant.core.paths import shared_speech_dir  # noqa: E402
from speechquant.core.quantization.heads import tied_head_paths  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402
from speechquant.core.quantization.presets import make_preset  # noqa: E402
from speechquant.core.quantization.tree import build_tree  # noqa: E402
from speechquant.core.sources import open_model  # noqa: E402

SUBSETS = ("ljspeech", "harvard")
FORMAT = 1


def select_utterances(data: str, limit: int) -> Dataset:
    """``limit`` LJSpeech and Harvard utterances of ``data``, spread evenly over the sorted ids."""
    dataset = open_dataset(data)
    chosen = [u for u in dataset.utterances if u.audio_path.parent.name in SUBSETS]
    if not chosen:
        chosen = list(dataset.utterances)  # a DATA without those folders: all of its utterances
    keep = set(timing_ids([u.id for u in chosen], limit))
    return Dataset(dataset.source, dataset.form, [u for u in chosen if u.id in keep])


def best_plan(model: LoadedModel) -> Plan:
    """``all-dynamic`` + int8 tied head where the model has one (Whisper), else ``tutorial``."""
    tree = build_tree(model.mods)
    heads = tied_head_paths(model.mods)
    if heads:
        plan = make_preset("all-dynamic", tree)
        plan.entries.update(dict.fromkeys(heads, "dynamic"))
        plan.name = "all-dynamic + int8 tied head"
        return plan
    return make_preset("tutorial", tree)


def transcribe_profiled(model: LoadedModel, wav: torch.Tensor) -> tuple[str, UtteranceStages]:
    with instrumented(model) as found:
        start = time.perf_counter()
        text = model.transcribe(wav)
        found.wall = time.perf_counter() - start
    return text, found


def profile(
    variants: list[LoadedModel], waves: list[torch.Tensor], warmup: int
) -> tuple[list[list[UtteranceStages]], list[list[str]], dict[str, Any]]:
    for wav in waves[:warmup]:
        for variant in variants:
            variant.transcribe(wav)
    monitor = LoadMonitor().start()
    found: list[list[UtteranceStages]] = [[] for _ in variants]
    texts: list[list[str]] = [[] for _ in variants]
    for index, wav in enumerate(waves):
        for k in timing_order(len(variants), index):
            text, stages = transcribe_profiled(variants[k], wav)
            found[k].append(stages)
            texts[k].append(text)
    return found, texts, monitor.stop().to_json()


def summary(found: list[UtteranceStages]) -> dict[str, Any]:
    """Mean ms per utterance of each row, shares of the wall time, and the decoder steps."""
    wall = sum(f.wall for f in found)
    rows: dict[str, list[Row]] = {}
    for stages in found:
        for row in breakdown(stages):
            rows.setdefault(row.label, []).append(row)
    table = [
        {
            "stage": label,
            "part_of": same[0].part_of,
            "ms": 1000 * sum(r.seconds for r in same) / len(found),
            "share": sum(r.seconds for r in same) / wall,
        }
        for label, same in rows.items()
    ]
    result: dict[str, Any] = {"wall_ms": 1000 * wall / len(found), "rows": table}
    steps = [s for f in found for s in f.steps]
    if steps:
        first = [f.steps[0] for f in found if f.steps]
        later = [s for f in found for s in f.steps[1:]]
        result["steps"] = {
            "per_utterance": len(steps) / len(found),
            "mean_ms": 1000 * statistics.fmean(s.seconds for s in steps),
            "first_ms": 1000 * statistics.fmean(s.seconds for s in first),
            "first_tokens_in": max(s.tokens_in for s in first),
            "later_ms": 1000 * statistics.fmean(s.seconds for s in later) if later else None,
            "later_layers_ms": 1000 * statistics.fmean(s.layers for s in later) if later else None,
            "later_head_ms": 1000 * statistics.fmean(s.forward_decoder - s.layers for s in later)
            if later
            else None,
            "later_tokens_in": max((s.tokens_in for s in later), default=None),
        }
    return result


def format_breakdown(names: list[str], summaries: list[dict[str, Any]]) -> str:
    head = "| stage | " + " | ".join(f"{n}: ms / utterance (share)" for n in names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|"]
    labels = [row["stage"] for row in summaries[0]["rows"]]
    for label in labels:
        cells = []
        part_of = None
        for s in summaries:
            row = next((r for r in s["rows"] if r["stage"] == label), None)
            part_of = row["part_of"] if row else part_of
            cells.append(f"{row['ms']:.1f} ({100 * row['share']:.1f} %)" if row else "-")
        name = f"  of which {label}" if part_of else label
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| total wall | " + " | ".join(f"{s['wall_ms']:.1f}" for s in summaries) + " |")
    return "\n".join(lines)


def format_steps(name: str, steps: dict[str, Any]) -> str:
    text = (
        f"{name}: {steps['per_utterance']:.1f} decoder steps per utterance, "
        f"{steps['mean_ms']:.2f} ms per step on average; the first step "
        f"{steps['first_ms']:.2f} ms ({steps['first_tokens_in']} prompt tokens, and the "
        f"cross-attention keys/values of the encoder output)"
    )
    if steps["later_ms"] is not None:
        cache = "key/value cache in use" if steps["later_tokens_in"] == 1 else "NO key/value cache"
        text += (
            f", later steps {steps['later_ms']:.2f} ms (decoder layers "
            f"{steps['later_layers_ms']:.2f}, logits head {steps['later_head_ms']:.2f}); tokens "
            f"fed to the decoder per later step: at most {steps['later_tokens_in']} ({cache})"
        )
    return text


def top_operators(model: LoadedModel, wav: torch.Tensor, k: int) -> dict[str, Any]:
    """torch.profiler's ``k`` operators with the most self CPU time over one transcription."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _, found = transcribe_profiled(model, wav)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return {
        "wall_s": found.wall,
        "steps": len(found.steps),
        "events": sum(e.count for e in events),
        "ops_self_s": sum(e.self_cpu_time_total for e in events) / 1e6,
        "top": [
            {"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1000}
            for e in events[:k]
        ],
    }


def format_ops(name: str, ops: dict[str, Any]) -> str:
    lines = [
        f"{name}: wall {ops['wall_s']:.3f} s under the profiler, operators' self CPU time "
        f"{ops['ops_self_s']:.3f} s (the difference is Python, dispatch and profiler overhead); "
        f"{ops['events']} operator calls"
        + (f", {ops['events'] / ops['steps']:.0f} per decoder step" if ops["steps"] else ""),
        "| operator | calls | self ms | share of wall |",
        "|---|---|---|---|",
    ]
    for op in ops["top"]:
        share = 100 * op["self_ms"] / 1000 / ops["wall_s"]
        lines.append(f"| {op['op']} | {op['calls']} | {op['self_ms']:.1f} | {share:.1f} % |")
    return "\n".join(lines)


VARIANTS = ("threads", "inference", "suppression", "front-end", "float-layers")
"""The ``--variants`` run by default; the captured steps (``CAPTURES``) are run when named."""


def run_candidates(
    model: LoadedModel, plan: Plan, dataset: Dataset, calib_n: int, which: list[str]
) -> list[dict[str, Any]]:
    """Variants of ``plan`` timed with it (paired, interleaved); speed-up = plan / variant."""
    settings = BenchSettings(warmup=1, encoder_rtf=False, calib_n=calib_n)

    def build(p: Plan) -> LoadedModel:
        return quantize_model(model, p, dataset, settings)[0]

    makers = {
        "threads": lambda: decoder_threads(
            build(renamed(plan, f"{plan.name}, search at 1 thread")), model, 1
        ),
        "inference": lambda: InferenceModeModel.of(
            build(renamed(plan, f"{plan.name}, inference_mode"))
        ),
        "suppression": lambda: lean_suppression(
            build(renamed(plan, f"{plan.name}, suppression built once")), model
        ),
        "front-end": lambda: build(static_front_end(plan)),
        "float-layers": lambda: build(float_decoder_layers(plan)),
    }
    first = next(wav for _, wav in iter_loaded(dataset.first(1), model.sample_rate))
    for how, label in CAPTURES.items():
        makers[how] = lambda how=how, label=label: captured_step(
            build(renamed(plan, f"{plan.name}, later steps captured: {label}")), model, how, first
        )
    unknown = sorted(set(which) - set(makers))
    if unknown:
        raise SystemExit(f"error: unknown --variants {unknown}; use some of {', '.join(makers)}")
    variants = [build(plan), *(makers[name]() for name in which)]
    results = paired_benchmark(variants, dataset, settings)
    reference = results[0]
    rows = []
    for variant, result in zip(variants, results, strict=True):
        speed = speedup_interval(
            [u.seconds for u in reference.utterances], [u.seconds for u in result.utterances]
        )
        same = sum(
            a.hyp == b.hyp for a, b in zip(reference.utterances, result.utterances, strict=True)
        )
        rows.append(
            {
                "variant": variant.plan.name,
                "rtf": result.rtf,
                "speedup": speed.ratio,
                "interval": speed.interval.to_json(),
                "wer": result.wer,
                "same_transcripts": same,
                "utterances": result.n_utterances,
            }
        )
    load = reference.load.to_json() if reference.load else None
    meta = {"load": load, "audio_seconds": reference.audio_seconds, "threads": reference.threads}
    return [meta, *rows]


def format_candidates(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | RTF | speed-up vs the plan [95 % interval] | WER % | same transcripts |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        low, high = r["interval"]
        lines.append(
            f"| {r['variant']} | {r['rtf']:.4f} | {r['speedup']:.3f} [{low:.3f}-{high:.3f}] | "
            f"{r['wer']:.2f} | {r['same_transcripts']} / {r['utterances']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speech = shared_speech_dir()
    parser.add_argument("--source", default="demo:whisper-tiny-en")
    parser.add_argument("--language", default=None, help="language code of a multilingual Whisper")
    parser.add_argument("--data", default=str(speech / "manifest.csv") if speech else "demo")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--plan", type=Path, default=None, help="a saved plan instead of the best")
    parser.add_argument("--calib-n", type=int, default=4)
    parser.add_argument("--top-ops", type=int, default=0)
    parser.add_argument("--candidates", action="store_true")
    parser.add_argument("--candidate-limit", type=int, default=20)
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="which --candidates, comma-separated"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.limit < 1 or args.warmup < 0 or args.candidate_limit < 1:
        parser.error("--limit and --candidate-limit must be at least 1, --warmup at least 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    model = open_model(args.source, language=args.language)
    dataset = select_utterances(args.data, args.limit)
    plan = Plan.load(args.plan) if args.plan else best_plan(model)
    quantized, _ = quantize_model(model, plan, dataset, BenchSettings(calib_n=args.calib_n))
    variants, names = [model, quantized], ["float32", plan.name]
    pairs = list(iter_loaded(dataset, model.sample_rate))
    if dataset.skipped:
        raise SystemExit(f"error: unreadable audio: {[s.to_dict() for s in dataset.skipped]}")
    waves = [wav for _, wav in pairs]
    loadavg_before = os.getloadavg()
    found, texts, load = profile(variants, waves, args.warmup)
    loadavg_after = os.getloadavg()
    machine = this_machine(torch.get_num_threads())
    audio = sum(w.numel() for w in waves) / model.sample_rate
    summaries = [summary(f) for f in found]
    wers = [
        compute_wer([(u.id, u.ref, t) for (u, _), t in zip(pairs, hyps, strict=True)], "whisper")
        for hyps in texts
    ]
    language = f", language {model.language}" if model.language else ""
    print(
        f"\n{args.source}{language}: {len(waves)} utterances ({audio:.1f} s of audio), "
        f"{machine.label()} (torch capability {machine.capability}); load average "
        f"{loadavg_before[0]:.2f} before, {loadavg_after[0]:.2f} after; {args.warmup} untimed "
        f"warm-up utterance(s), variants alternating utterance by utterance"
    )
    print(format_breakdown(names, summaries))
    for name, s, wer in zip(names, summaries, wers, strict=True):
        rtf = s["wall_ms"] * len(waves) / 1000 / audio
        note = " (random weights: meaningless)" if args.source.startswith("replica:") else ""
        print(f"{name}: RTF {rtf:.4f}, WER {wer.wer:.2f} %{note}")
        if "steps" in s:
            print(format_steps(name, s["steps"]))
    same = sum(a == b for a, b in zip(texts[0], texts[1], strict=True))
    print(f"transcripts identical between float32 and {names[1]}: {same} / {len(waves)}")
    report: dict[str, Any] = {
        "format": FORMAT,
        "source": args.source,
        "language": model.language,
        "machine": machine.to_json(),
        "utterances": [u.id for u, _ in pairs],
        "audio_seconds": audio,
        "loadavg": [loadavg_before, loadavg_after],
        "load": load,
        "plans": {n: {**s, "wer": w.wer} for n, s, w in zip(names, summaries, wers, strict=True)},
    }
    if args.top_ops:
        report["top_ops"] = {}
        for name, variant in zip(names, variants, strict=True):
            ops = top_operators(variant, waves[0], args.top_ops)
            report["top_ops"][name] = ops
            first = f"{name}, first utterance ({waves[0].numel() / model.sample_rate:.1f} s)"
            print("\n" + format_ops(first, ops))
    if args.candidates:
        if model.interface != "WhisperASR":
            raise SystemExit("error: --candidates are Whisper variants; give a Whisper --source")
        chosen = select_utterances(args.data, args.candidate_limit)
        meta, *rows = run_candidates(model, plan, chosen, args.calib_n, args.variants.split(","))
        print(
            f"\ncandidates against {plan.name}: {rows[0]['utterances']} utterances "
            f"({meta['audio_seconds']:.1f} s), {meta['threads']} threads, paired interleaved "
            f"timing after 1 warm-up utterance; load {json.dumps(meta['load'])}"
        )
        print(format_candidates(rows))
        report["candidates"] = {"meta": meta, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
