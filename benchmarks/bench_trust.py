"""Do paired speed-ups survive background load and stale baselines?

Usage: python benchmarks/bench_trust.py [--data PATH/manifest.csv] [--limit 12] [--threads 1]
       [--repeats 1] [--unit NAME]

On ``demo:whisper-tiny-en`` with the real speech set, ``all-dynamic`` and one sensitivity row
(a single unit under ``dynamic``) are measured against float32 three ways:

(a) quiet: as the machine is (other users' load included; see the load column);
(b) busy: while a busy-loop process started by this script occupies one core;
(c) stale baseline: the float baseline taken into the history at the start, before the other
    runs ("an hour earlier"), supplies WER; the speed-up comes from the float model timed again
    alongside the plan, under (b)'s load. The ratio the old code computed from the stale
    baseline's RTF is printed beside it, labelled unpaired.

Each prints the paired speed-up (end to end and encoder) with its 95 % bootstrap interval. Target:
the three agree within 10 % of each other and their intervals overlap, for both rows.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SPEECHQUANT_NO_PROGRESS", "1")
warnings.filterwarnings("ignore")

from speechquant.core.data.datasets import open_dataset  # noqa: E402
from speechquant.core.evaluation.bench import BenchSettings  # noqa: E402
from speechquant.core.evaluation.experiment import run_baseline  # noqa: E402
from speechquant.core.evaluation.history import HistoryStore  # noqa: E402
from speechquant.core.evaluation.measure import Measurement, PlanMeasurer  # noqa: E402
from speechquant.core.evaluation.tables import significance, speedup_text  # noqa: E402
from speechquant.core.machine import this_machine  # noqa: E402
from speechquant.core.paths import shared_speech_dir  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402
from speechquant.core.quantization.presets import make_preset  # noqa: E402
from speechquant.core.quantization.tree import build_tree  # noqa: E402
from speechquant.core.search.units import assignment_plan, default_units  # noqa: E402
from speechquant.core.sources import open_model  # noqa: E402

BUSY_LOOP = "import select, sys\nwhile not select.select([sys.stdin], [], [], 0)[0]:\n    pass\n"
"""Spins one core until its stdin (a pipe from this script) closes: stopped, or this script gone."""


def _row(condition: str, m: Measurement, unpaired: float | None = None) -> list[str]:
    c = m.comparison
    assert c is not None
    load = m.bench.load if m.bench is not None else None
    busy = "-" if load is None or load.other_cores is None else f"{load.other_cores:.2f}"
    text = (
        f"  {condition:<16}{speedup_text(c.speedup, c.speedup_ci, significance(c).speed):<28}"
        f"{speedup_text(c.speedup_encoder, c.speedup_encoder_ci, significance(c).encoder):<28}{busy:>8}"
        f"{'yes' if load and load.busy else 'no':>6}"
    )
    if unpaired is not None:
        text += f"   unpaired from the stale baseline: {unpaired:.2f}x"
    return [text]


def _verdict(name: str, rows: list[Measurement]) -> bool:
    comps = [m.comparison for m in rows]
    speeds = [c.speedup for c in comps if c is not None and c.speedup]
    cis = [c.speedup_ci for c in comps if c is not None and c.speedup_ci]
    spread = max(speeds) / min(speeds) - 1 if speeds else float("inf")
    overlap = len(cis) == len(rows) and max(lo for lo, _ in cis) <= min(hi for _, hi in cis)
    ok = spread <= 0.10 and overlap
    print(
        f"  {name}: speed-ups within {100 * spread:.1f} % of each other (target 10 %), "
        f"intervals {'overlap' if overlap else 'do NOT overlap'}: {'met' if ok else 'NOT met'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speech = shared_speech_dir()
    parser.add_argument("--data", default=str(speech / "manifest.csv") if speech else None)
    parser.add_argument("--limit", type=int, default=12, help="utterances (default 12)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats per utterance")
    parser.add_argument(
        "--unit", default="decoder.layers.0", help="the sensitivity row's unit (dynamic)"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the busy loop on SIGTERM too
    if args.data is None:
        parser.error("the real speech set is absent; pass --data")
    model = open_model("demo:whisper-tiny-en")
    dataset = open_dataset(args.data, limit=args.limit)
    bench = BenchSettings(warmup=1, repeats=args.repeats, threads=args.threads)
    tree = build_tree(model.mods)
    units = default_units(model.mods, tree)
    by_name = {u.name: u for u in units}
    if args.unit not in by_name:
        parser.error(f"unknown unit {args.unit}; choose one of {', '.join(by_name)}")
    plans: list[tuple[str, Plan]] = [
        ("all-dynamic", make_preset("all-dynamic", tree)),
        (f"{args.unit} dynamic", assignment_plan(units, {args.unit: "dynamic"})),
    ]
    machine = this_machine(args.threads)
    print(
        f"demo:whisper-tiny-en, {len(dataset)} utterances of {args.data}, {args.threads} "
        f"thread(s), {machine.label()} (machine {machine.key})"
    )
    rows: dict[str, list[Measurement]] = {name: [] for name, _ in plans}
    unpaired: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        history = HistoryStore(Path(tmp) / "history.sqlite")
        stale = run_baseline(model, dataset, bench, history).bench  # (c)'s baseline, taken first
        for name, plan in plans:  # (a)
            fresh = PlanMeasurer(model, dataset, bench, None)
            rows[name].append(fresh.measure(plan, name, "single"))
        busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.PIPE)
        try:
            for name, plan in plans:  # (b)
                fresh = PlanMeasurer(model, dataset, bench, None)
                rows[name].append(fresh.measure(plan, name, "single"))
            cached = PlanMeasurer(model, dataset, bench, history)
            assert cached.baseline().cached
            for name, plan in plans:  # (c)
                m = cached.measure(plan, name, "single")
                rows[name].append(m)
                unpaired[name] = stale.rtf / m.rtf
        finally:
            busy.kill()
            busy.wait()
    print(f"stale float baseline: RTF {stale.rtf:.4f}, started {stale.started_at}")
    header = (
        f"  {'condition':<16}{'speed-up [95% CI]':<28}{'encoder [95% CI]':<28}"
        f"{'others':>8}{'busy':>6}"
    )
    ok = True
    for name, _ in plans:
        print(f"\n{name} against float32 (paired, interleaved utterance by utterance)")
        print(header)
        a, b, c = rows[name]
        for line in _row("(a) quiet", a) + _row("(b) busy loop", b):
            print(line)
        for line in _row("(c) stale base", c, unpaired[name]):
            print(line)
        ok = _verdict(name, rows[name]) and ok
    print(
        "\nothers: CPUs other processes kept busy on average during the row's run (from "
        "/proc/stat); busy: the run's load report flagged it"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
