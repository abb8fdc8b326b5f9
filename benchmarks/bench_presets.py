"""Speed of the presets on a replica, measured in one process with interleaved repeats.

Usage: python benchmarks/bench_presets.py [--source replica:wav2vec2-large] [--seconds 5] [--repeats 5]
       python benchmarks/bench_presets.py --source replica:crdnn [--limit 6]

An encoder-only (CTC) source: per variant, the median encoder forward time on generated audio,
speed-up against fp32, model bytes, resident memory added by building the variant, and the
process's peak RSS at the end.

An attentional encoder-decoder source (``replica:crdnn``, ``replica:conformer``, whose beam
search runs LSTM/GRU or transformer decoders and a language model): the float model and each
preset that applies transcribe the first ``--limit`` utterances of the bundled demo speech
together (``paired_benchmark``: utterance by utterance, interleaved), and the compare table
gives end-to-end and encoder speed-ups with 95 % intervals, on the CPU named above it. Random
weights: the WER column is meaningless.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from speechquant.core.data.datasets import open_dataset  # noqa: E402
from speechquant.core.errors import PlanError  # noqa: E402
from speechquant.core.evaluation.bench import (  # noqa: E402
    BenchSettings,
    model_bytes,
    peak_rss_bytes,
)
from speechquant.core.evaluation.experiment import run_compare  # noqa: E402
from speechquant.core.evaluation.tables import format_comparison  # noqa: E402
from speechquant.core.quantization.apply import apply_plan, set_engine  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402
from speechquant.core.quantization.presets import make_preset  # noqa: E402
from speechquant.core.quantization.settings import QuantSettings  # noqa: E402
from speechquant.core.quantization.tree import build_tree  # noqa: E402
from speechquant.core.sources import open_model  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def speech_like(seconds: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    n = int(seconds * 16000)
    t = torch.arange(n) / 16000
    envelope = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t)
    return envelope * (
        0.2 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(n, generator=generator)
    )


def compare_seq2seq(model, presets: list[str], limit: int, repeats: int, threads: int) -> None:
    """Float and each applicable preset, paired on the demo speech (see the module docstring)."""
    tree = build_tree(model.mods)
    plans = []
    for name in presets:
        try:
            plans.append(make_preset(name, tree))
        except PlanError as exc:
            print(f"{name}: skipped ({exc})")
    settings = BenchSettings(limit=limit, warmup=1, repeats=repeats, threads=threads, calib_n=2)
    results = [e.bench for e in run_compare(model, plans, open_dataset("demo"), settings, None)]
    first = results[0]
    machine = first.machine.label() if first.machine else "unknown machine"
    load = first.load.to_json() if first.load else "-"
    print(
        f"{model.source} on {first.n_utterances} demo utterances ({first.audio_seconds:.0f} s), "
        f"{machine}, {repeats} timed repeat(s) per utterance; load during the "
        f"run: {load}"
    )
    print(format_comparison(results))
    print(f"peak RSS of the process: {peak_rss_bytes() / 1e9:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="replica:wav2vec2-large")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, help="timed repeats (default 5; 1 per utterance)")
    parser.add_argument("--limit", type=int, default=4, help="demo utterances (encoder-decoders)")
    parser.add_argument(
        "--presets",
        default="tutorial,all-dynamic,bf16",
        help="comma-separated presets timed against float (encoder-decoders)",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = open_model(args.source)
    if model.interface == "EncoderDecoderASR":
        presets = [p for p in args.presets.split(",") if p]
        compare_seq2seq(model, presets, args.limit, args.repeats or 1, args.threads)
        return
    args.repeats = args.repeats or 5
    tree = build_tree(model.mods)
    calib = [speech_like(2.0, seed) for seed in range(4)]
    wav = speech_like(args.seconds, 99)
    model.encode(wav)  # page in the float weights first, so RSS growth below is the variants' own

    def variant(name: str, plan: Plan | None) -> dict:
        before = rss_bytes()
        built = model if plan is None else apply_plan(model, plan, calib)
        return {
            "name": name,
            "model": built,
            "engine": plan.settings.engine if plan else "x86",
            "rss_added": rss_bytes() - before,
            "bytes": model_bytes(built.mods),
            "times": [],
        }

    onednn = QuantSettings(engine="onednn")
    bf16 = make_preset("bf16", tree)
    fast_mix = dict(bf16.entries)
    fast_mix.pop("encoder.wav2vec2.model", None)
    fast_mix.update(
        {
            "encoder.wav2vec2.model.feature_extractor": "bf16",
            "encoder.wav2vec2.model.feature_projection": "bf16",
            "encoder.wav2vec2.model.encoder.layers": "dynamic",
        }
    )
    variants = [
        variant("fp32", None),
        variant("tutorial (x86)", make_preset("tutorial", tree)),
        variant("tutorial (onednn)", make_preset("tutorial", tree, onednn)),
        variant("all-dynamic (x86)", make_preset("all-dynamic", tree)),
        variant("all-dynamic (onednn)", make_preset("all-dynamic", tree, onednn)),
        variant("bf16", bf16),
        variant("bf16 front + onednn int8 layers", Plan(fast_mix, onednn, name="bf16+int8")),
    ]
    for v in variants:
        set_engine(v["engine"])
        v["model"].encode(wav)
    for _ in range(args.repeats):
        for v in variants:
            set_engine(v["engine"])
            start = time.perf_counter()
            v["model"].encode(wav)
            v["times"].append(time.perf_counter() - start)

    base = statistics.median(variants[0]["times"])
    print(
        f"{args.source}, {args.seconds:.0f} s input, {args.threads} threads, {args.repeats} interleaved repeats"
    )
    print(
        f"{'variant':<34}{'median s':>10}{'RTF':>8}{'speed-up':>10}{'model MB':>10}{'RSS +MB':>9}"
    )
    for v in variants:
        median = statistics.median(v["times"])
        print(
            f"{v['name']:<34}{median:>10.3f}{median / args.seconds:>8.3f}{base / median:>9.2f}x"
            f"{v['bytes'] / 1e6:>10.1f}{v['rss_added'] / 1e6:>9.0f}"
        )
    print(f"peak RSS of the process: {peak_rss_bytes() / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
