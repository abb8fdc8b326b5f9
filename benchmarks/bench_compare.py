"""WER, ΔWER, RTF and speed-ups of the presets in one process, and the harness's own overhead.

Usage: python benchmarks/bench_compare.py [--data PATH/manifest.csv] [--large]

1. ``compare`` on demo:whisper-tiny-en over the real speech set (float, tutorial, all-dynamic, bf16).
2. The harness overhead: the same utterances transcribed by a bare loop over
   ``asr.transcribe_batch`` and by :func:`speechquant.core.evaluation.bench.benchmark`, interleaved.
3. With ``--large``: ``compare`` on replica:wav2vec2-large (speed only; its WER is meaningless).
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

from speechquant.core.data.datasets import iter_loaded, open_dataset  # noqa: E402
from speechquant.core.evaluation.bench import BenchSettings, benchmark  # noqa: E402
from speechquant.core.evaluation.experiment import run_compare  # noqa: E402
from speechquant.core.evaluation.tables import format_comparison  # noqa: E402
from speechquant.core.paths import shared_speech_dir  # noqa: E402
from speechquant.core.quantization.presets import make_preset  # noqa: E402
from speechquant.core.quantization.tree import build_tree  # noqa: E402
from speechquant.core.sources import open_model  # noqa: E402


def compare(source: str, data: str, limit: int, calib_n: int) -> None:
    model = open_model(source)
    dataset = open_dataset(data)
    plans = [
        make_preset(name, build_tree(model.mods)) for name in ("tutorial", "all-dynamic", "bf16")
    ]
    settings = BenchSettings(limit=limit, warmup=2, repeats=1, calib_n=calib_n)
    results = [e.bench for e in run_compare(model, plans, dataset, settings, None)]
    machine = results[0].machine.label() if results[0].machine else "unknown machine"
    print(
        f"\n{source} on {results[0].n_utterances} utterances ({results[0].audio_seconds:.0f} s), "
        f"{machine}, calibration {calib_n} disjoint utterances; load during the run: "
        f"{results[0].load.to_json() if results[0].load else '-'}"
    )
    print(format_comparison(results))


def harness_overhead(data: str, limit: int, rounds: int) -> None:
    model = open_model("demo:whisper-tiny-en")
    dataset = open_dataset(data, limit=limit)
    waves = [wav for _, wav in iter_loaded(dataset, model.sample_rate)]
    settings = BenchSettings(warmup=0, repeats=1, encoder_rtf=False)
    for wav in waves[:2]:
        model.transcribe(wav)
    direct, harness = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        with torch.no_grad():
            for wav in waves:
                model.asr.transcribe_batch(wav.unsqueeze(0), torch.tensor([1.0]))
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        benchmark(model, dataset, settings)
        harness.append(time.perf_counter() - start)
    d, h = statistics.median(direct), statistics.median(harness)
    print(
        f"\nharness overhead on {len(waves)} utterances, {rounds} interleaved rounds: "
        f"bare transcribe_batch loop {d:.2f} s, benchmark() {h:.2f} s "
        f"(incl. audio loading, WER, sizes): {100 * (h - d) / d:+.1f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speech = shared_speech_dir()
    parser.add_argument("--data", default=str(speech / "manifest.csv") if speech else "demo")
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--calib-n", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args()
    compare("demo:whisper-tiny-en", args.data, args.limit, args.calib_n)
    harness_overhead(args.data, 12, args.rounds)
    if args.large:
        compare("replica:wav2vec2-large", args.data, 8, 4)


if __name__ == "__main__":
    main()
