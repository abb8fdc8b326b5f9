"""``speechquant doctor``: versions, CPU features, quantized engines, and a measured verdict per scheme."""

from __future__ import annotations

import argparse
import json

from speechquant.core.cli.tqdm_progress import TqdmProgress
from speechquant.core.evaluation.doctor import format_report, run_doctor


def add_doctor_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="this machine: versions, CPU features, quantized engines, measured speed per scheme",
        description=(
            "Describe this machine and time float32 against every scheme on typical ASR Linear "
            "shapes (about 10 s, interleaved rounds). The report is cached per machine and torch "
            "version; the tree, plan checks and the 'auto' preset read it."
        ),
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--refresh", action="store_true", help="measure again even if cached")
    p.add_argument("--no-bench", action="store_true", help="describe the machine only")
    p.add_argument("--threads", type=int, help="torch threads for the timing (default: torch's)")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    with TqdmProgress() as progress:
        report = run_doctor(
            refresh=args.refresh, measure=not args.no_bench, threads=args.threads, progress=progress
        )
    print(json.dumps(report.to_json(), indent=2) if args.json else format_report(report))
    return 0
