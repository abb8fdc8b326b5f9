"""``speechquant doctor``: versions, CPU features, quantized engines, and a measured verdict per scheme."""

from __future__ import annotations

import argparse
import json

from speechquant.core.cli.tqdm_progress import TqdmProgress
from speechquant.core.evaluation.doctor import DoctorReport, run_doctor, scheme_advice


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


def format_doctor(report: DoctorReport) -> str:
    machine, cpu = report.machine, report.machine.cpu
    lines = [
        f"CPU          {cpu.model} ({cpu.arch}), {machine.cores} cores available",
        f"features     {', '.join(cpu.features) or 'none read'}"
        f" (torch capability: {machine.capability or 'unknown'})",
        f"int8 dot     {'yes' if cpu.int8_dot else 'no (no VNNI/AMX-INT8/dotprod)'}",
        f"native bf16  {'yes' if cpu.native_bf16 else 'no: bf16 is emulated here'}",
        f"engines      {', '.join(report.engines)} (default {report.default_engine})",
        f"python       {report.python}",
    ]
    lines += [f"{name:<12} {version}" for name, version in report.versions.items()]
    if report.speeds:
        lines.append("")
        lines.append(
            f"speed against float32 ({report.rounds} interleaved rounds per shape, "
            f"{machine.threads} threads, median [95 % interval]; measured {report.measured_at}):"
        )
        width = max(len(s.variant) for s in report.speeds)
        for speed in report.speeds:
            lines.append(f"  {speed.variant:<{width}}  {speed.verdict()}")
        if report.busy and report.loadavg:
            lines.append(
                f"warning: the machine was busy while timing (load average {max(report.loadavg):.1f} "
                f"on {machine.cores} cores): these ratios are distorted; run "
                "'speechquant doctor --refresh' when it is quiet"
            )
        for scheme in sorted({s.scheme for s in report.speeds}):
            advice = scheme_advice(scheme, cpu, report.best(scheme))
            if advice:
                lines.append(f"warning: {advice}")
    return "\n".join(lines)


def cmd_doctor(args: argparse.Namespace) -> int:
    with TqdmProgress() as progress:
        report = run_doctor(
            refresh=args.refresh, measure=not args.no_bench, threads=args.threads, progress=progress
        )
    print(json.dumps(report.to_json(), indent=2) if args.json else format_doctor(report))
    return 0
