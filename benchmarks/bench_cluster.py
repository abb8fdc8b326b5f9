"""Sensitivity on demo:whisper-tiny-en with the real speech set: one process vs a local Ray cluster.

Usage: python benchmarks/bench_cluster.py [--data PATH/manifest.csv] [--limit N] [--workers 2]
       [--schemes dynamic] [--loo] [--timing-n 20] [--shard-size 4] [--cost-n 10]

1. Serial: ``run_sensitivity`` in this process with ``--workers`` torch threads.
2. Cluster: the same analysis with ``--cluster local:N`` (N workers of 1 thread each; the driver
   runs each timing session, float model and plan together, on ``--timing-n`` utterances with
   N threads while the workers transcribe).
3. The cost of one pass of the float model with 1 thread in this process, RTF on the first
   ``--cost-n`` utterances: what a 1-thread worker spends per audio second (the input of the
   estimate in the README).
Prints the wall time of each, the CPU, and the WER rows side by side: every WER, ΔWER and
per-utterance hypothesis must be the same (exit code 1 otherwise). Both runs use no history.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SPEECHQUANT_NO_PROGRESS", "1")
warnings.filterwarnings("ignore")

import torch

from speechquant.core.cluster.session import open_cluster
from speechquant.core.cluster.settings import DEFAULT_TIMING_N, ClusterSettings
from speechquant.core.data.datasets import open_dataset
from speechquant.core.evaluation.bench import BenchSettings, benchmark
from speechquant.core.evaluation.measure import Measurement
from speechquant.core.machine import this_machine
from speechquant.core.paths import shared_speech_dir
from speechquant.core.search.sensitivity import (
    SensitivityResult,
    SensitivitySettings,
    run_sensitivity,
)
from speechquant.core.sources import open_model

SOURCE = "demo:whisper-tiny-en"


def _measurements(result: SensitivityResult) -> list[Measurement]:
    found = [result.baseline] + [r.single for r in result.rows]
    found += list(result.all_units.values())
    return found + [r.loo for r in result.rows if r.loo is not None]


def _hyps(m: Measurement) -> list[str]:
    return [u.hyp for u in m.bench.utterances] if m.bench is not None else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="manifest (default: the shared speech set)")
    parser.add_argument("--limit", type=int, help="first N utterances (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="cluster workers = serial threads")
    parser.add_argument("--schemes", nargs="+", default=["dynamic"])
    parser.add_argument("--loo", action="store_true", help="also leave-one-out")
    parser.add_argument("--timing-n", type=int, default=DEFAULT_TIMING_N)
    parser.add_argument("--shard-size", type=int, default=4)
    parser.add_argument("--cost-n", type=int, default=10, help="utterances of the 1-thread pass")
    args = parser.parse_args()
    data_path = args.data or (shared_speech_dir() or Path("missing")) / "manifest.csv"
    if not Path(data_path).is_file():
        raise SystemExit(f"no speech set at {data_path}; pass --data or set SPEECHQUANT_SPEECH")
    model = open_model(SOURCE)
    dataset = open_dataset(data_path, limit=args.limit)
    settings = SensitivitySettings(tuple(args.schemes), args.loo)
    bench = BenchSettings(warmup=1, threads=args.workers, calib_n=8, encoder_rtf=False)
    audio = sum(u.duration or 0.0 for u in dataset)
    machine = this_machine(args.workers)
    print(f"{SOURCE}, {len(dataset)} utterances ({audio:.0f} s), schemes {args.schemes}, "
          f"loo {args.loo}; {machine.label()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip

    torch.set_num_threads(args.workers)
    start = time.perf_counter()
    serial = run_sensitivity(model, dataset, None, settings=settings, bench=bench)
    serial_s = time.perf_counter() - start
    passes = serial.computed + 1
    print(f"serial, {args.workers} threads: {serial_s:.1f} s for {passes} measurements")

    cluster = ClusterSettings(
        f"local:{args.workers}", shard_size=args.shard_size, timing_n=args.timing_n
    )
    start = time.perf_counter()
    with open_cluster(cluster) as session:
        opened = time.perf_counter() - start
        executor = session.executor(model, open_model)
        executor.workers()
        ready = time.perf_counter() - start
        spread = run_sensitivity(
            model, dataset, None, settings=settings, bench=bench, executor=executor
        )
    cluster_s = time.perf_counter() - start
    print(f"local:{args.workers} (1 thread per worker, timing on the driver with {args.workers} "
          f"threads over {min(args.timing_n, len(dataset))} utterances): {cluster_s:.1f} s "
          f"(Ray up {opened:.1f} s, workers ready {ready:.1f} s); "
          f"{serial_s / cluster_s:.2f}x the serial speed")  # fmt: skip

    one_thread = BenchSettings(limit=args.cost_n, warmup=1, threads=1, encoder_rtf=False)
    cost = benchmark(model, dataset, one_thread)
    torch.set_num_threads(args.workers)
    print(f"float pass with 1 thread in this process: RTF {cost.rtf:.4f} on "
          f"{cost.n_utterances} utterances ({cost.audio_seconds:.0f} s of audio), "
          f"{cost.machine.label() if cost.machine else '?'}")  # fmt: skip

    print(f"\n{'measurement':<40}{'WER':>7}{'ΔWER serial':>12}{'ΔWER cluster':>13}  same hyps")
    same = True
    for one, many in zip(_measurements(serial), _measurements(spread), strict=True):
        hyps_equal = _hyps(one) == _hyps(many)
        equal = hyps_equal and one.delta_wer == many.delta_wer and one.wer == many.wer
        same &= equal
        print(f"{one.label[:39]:<40}{one.wer:>7.2f}{one.delta_wer:>+12.2f}"
              f"{many.delta_wer:>+13.2f}  {'yes' if hyps_equal else 'NO'}")  # fmt: skip
    print("all WER rows and hypotheses identical" if same else "DIFFERENT results (see above)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
