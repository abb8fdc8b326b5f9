"""``speechquant sensitivity`` and ``speechquant search``: per-unit analysis and automatic plans."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from speechquant.core.cli.cluster_options import (
    add_cluster_options,
    cluster_executor,
    cluster_note,
    cluster_settings,
)
from speechquant.core.cli.commands import bench_settings, open_source
from speechquant.core.cli.scheme_options import (
    add_scheme_options,
    add_schemes_choice,
    scheme_settings,
)
from speechquant.core.cli.tqdm_progress import TqdmProgress
from speechquant.core.cluster.settings import ClusterError
from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import DataError
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.measure import OBJECTIVES, Measurement
from speechquant.core.evaluation.metrics import DEFAULT_NORMALIZER, NORMALIZERS
from speechquant.core.machine import MachineInfo
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.quantization.schemes import search_candidates
from speechquant.core.quantization.settings import ENGINES
from speechquant.core.quantization.tree import build_tree
from speechquant.core.search.plan_search import (
    ALGORITHM,
    SearchSettings,
    default_engines,
    run_search,
)
from speechquant.core.search.report import format_search, plot_search
from speechquant.core.search.sensitivity import (
    SensitivitySettings,
    format_sensitivity,
    run_sensitivity,
)
from speechquant.core.search.units import (
    Unit,
    default_units,
    merge_families,
    units_at_depth,
    units_from_paths,
)

UNITS_HELP = (
    "Units: by default wav2vec2 gives feature_extractor, feature_projection, pos_conv_embed, "
    "each encoder layer, enc and ctc_lin; Whisper gives encoder conv1/conv2, each encoder layer "
    "and each decoder layer, and the tied output projection decoder.embed_tokens; other models "
    "the modules at depth 2."
)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _common(p: argparse.ArgumentParser, source_help: str, data_help: str) -> None:
    p.add_argument("source", help=source_help)
    p.add_argument("--data", required=True, help=data_help)
    add_schemes_choice(p, search_candidates())
    p.add_argument("--depth", type=int, help="units: the modules at this tree depth instead")
    p.add_argument("--unit", action="append", metavar="PATH", help="a unit by module path (repeat)")
    p.add_argument(
        "--coarse", action="store_true", help="one unit per family (e.g. all encoder layers)"
    )
    p.add_argument("--limit", type=int, help="use the first N utterances (sorted order)")
    p.add_argument("--calib", help="calibration DATA for static units (default: DATA, disjoint)")
    p.add_argument("--calib-n", type=int, default=10, help="calibration utterances (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up utterances (default 1)")
    p.add_argument("--repeats", type=int, default=1, help="timed repeats, median kept (default 1)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    add_scheme_options(p)
    p.add_argument(
        "--normalizer", choices=sorted(NORMALIZERS), default=DEFAULT_NORMALIZER, help="WER text"
    )
    p.add_argument(
        "--no-history",
        action="store_true",
        help="neither reuse nor store measurements (nothing to resume from)",
    )
    p.add_argument("--json", metavar="OUT", help="write the full result as JSON ('-': stdout)")
    add_cluster_options(p)


def add_search_parsers(sub: Any, source_help: str, data_help: str) -> None:
    p = sub.add_parser(
        "sensitivity",
        help="ΔWER, speed-up and size saved of quantizing each unit alone (and all but it)",
        description="For each unit and scheme: ΔWER against the float model (with the utterances "
        "that got worse), end-to-end and encoder speed-up, size saved; and leave-one-out (every "
        "unit quantized but this one). Each measurement is stored in the run history as it "
        f"finishes; a rerun reuses them, so a cancelled run resumes. {UNITS_HELP}",
    )
    _common(p, source_help, data_help)
    p.add_argument("--engine", choices=ENGINES, default="x86", help="quantized engine (x86)")
    p.add_argument("--no-loo", action="store_true", help="skip the leave-one-out measurements")
    p.add_argument("--worst", type=int, default=2, help="worst utterances shown per row")
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser(
        "search",
        help="find the fastest (or smallest) per-unit plan within a WER budget",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Search per-unit schemes and the engine for the fastest (or smallest) plan "
        "whose ΔWER on a search split stays within the budget, then confirm it on a disjoint "
        "evaluation split. Calibration utterances come from neither split.\n\n"
        f"{ALGORITHM}\n{UNITS_HELP}",
    )
    _common(p, source_help, data_help)
    p.add_argument(
        "--max-wer-increase",
        type=float,
        required=True,
        metavar="X",
        help="budget: ΔWER in percentage points on the search split ('inf': speed only)",
    )
    p.add_argument("--objective", choices=list(OBJECTIVES), default="rtf", help="default rtf")
    p.add_argument(
        "--engines",
        nargs="+",
        choices=ENGINES,
        help=f"quantized engines to try (default {' '.join(default_engines())})",
    )
    p.add_argument("--search-n", type=int, default=20, help="search split size (default 20)")
    p.add_argument("--eval-n", type=int, help="evaluation split size (default: the rest)")
    p.add_argument("--max-evals", type=int, default=30, help="plans measured at most (30)")
    p.add_argument(
        "--confidence",
        action="store_true",
        help="budget rule: the upper end of the 95 %% ΔWER interval must stay within the budget "
        "(default: the point estimate; the report shows both)",
    )
    p.add_argument(
        "--duel-rounds",
        type=int,
        default=1,
        help="paired timing passes against the kept plan per candidate (default 1; 0: none)",
    )
    p.add_argument("--loo", action="store_true", help="also run leave-one-out (not used)")
    p.add_argument("-o", "--output", help="write the plan found to this JSON file")
    p.add_argument("--plot", metavar="PNG", help="chart WER vs RTF of every plan tried")
    p.set_defaults(func=cmd_search)


def _bench(args: argparse.Namespace) -> BenchSettings:
    # --limit is applied when the dataset is opened; the splits must see every utterance left
    return replace(bench_settings(args), limit=None)


def _units(model: LoadedModel, args: argparse.Namespace) -> list[Unit]:
    tree = build_tree(model.mods)
    if args.unit:
        units = units_from_paths(model.mods, args.unit, tree)
    elif args.depth is not None:
        units = units_at_depth(model.mods, args.depth, tree)
    else:
        units = default_units(model.mods, tree)
    return merge_families(units, tree) if args.coarse else units


def _write_json(data: Any, target: str) -> None:
    text = json.dumps(data, indent=2, default=str)
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text + "\n")
        _say(f"wrote {target}")


def _say_notes(measurements: list[Measurement], machine: dict[str, Any] | None) -> None:
    """Busy-machine, pairing and cluster warnings of the measurements (each once), and the
    machine."""
    seen: list[str] = []
    busy = 0
    for m in measurements:
        if m.bench is not None and m.bench.load is not None and m.bench.load.busy:
            busy += 1
        spread = m.bench.cluster if m.bench is not None else None
        for text in (m.comparison.warnings if m.comparison else []) + (
            spread.warnings if spread else []
        ):
            if text not in seen:
                seen.append(text)
    if busy:
        _say(
            f"warning: the machine was busy during {busy} of {len(measurements)} measurements "
            "(other processes took CPU time); speed-ups are paired, absolute RTFs are not reliable"
        )
    for text in seen:
        _say(f"warning: {text}")
    if machine:
        info = MachineInfo.from_json(machine)
        _say(f"measured on {info.label()} (machine {info.key})")


def _say_cluster(measurement: Measurement) -> None:
    note = cluster_note(measurement.bench) if measurement.bench is not None else None
    if note:
        _say(note)


@contextmanager
def _resumable(history: HistoryStore | None) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        if history is not None:
            _say("finished measurements are kept in the run history; rerun to resume")
        raise


def cmd_sensitivity(args: argparse.Namespace) -> int:
    bench = _bench(args)
    quant = scheme_settings(args, engine=args.engine)
    settings = SensitivitySettings(tuple(args.schemes), not args.no_loo, quant)
    cluster = cluster_settings(args)
    history = None if args.no_history else HistoryStore()
    with TqdmProgress() as bar, _resumable(history):
        model = open_source(args, bar)
        dataset = open_dataset(args.data, limit=args.limit, progress=bar)
        with cluster_executor(cluster, model, args) as executor:
            result = run_sensitivity(
                model, dataset, history, units=_units(model, args), settings=settings,
                bench=bench, progress=bar, executor=executor,
            )  # fmt: skip
    if result.calibration_ids:
        _say(f"static units calibrated on: {', '.join(result.calibration_ids)}")
    _say_notes([r.single for r in result.rows], result.machine)
    _say_cluster(result.baseline)
    print(f"{model.source} on {len(result.ids)} utterances of {args.data}")
    print(format_sensitivity(result, worst=args.worst))
    if args.json:
        _write_json(result.to_dict(), args.json)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    bench = _bench(args)
    quant = scheme_settings(args)
    settings = SearchSettings(
        max_wer_increase=args.max_wer_increase,
        objective=args.objective,
        schemes=tuple(args.schemes),
        engines=tuple(args.engines) if args.engines else default_engines(),
        search_n=args.search_n,
        eval_n=args.eval_n,
        max_evals=args.max_evals,
        confidence=args.confidence,
        duel_rounds=args.duel_rounds,
        leave_one_out=args.loo,
        quant=quant,
    )
    if args.plot and not args.plot.lower().endswith(".png"):
        raise DataError(f"--plot writes a PNG; give a file name ending in .png, not {args.plot}")
    cluster = cluster_settings(args)
    duels = settings.objective != "size" and settings.duel_rounds > 0
    if cluster is not None and cluster.timing_node is not None and duels:
        raise ClusterError(
            "search times each candidate against the kept plan in this process, so its timing "
            "sessions must run here too; drop --timing-node (or use --duel-rounds 0)"
        )
    history = None if args.no_history else HistoryStore()
    with TqdmProgress() as bar, _resumable(history):
        model = open_source(args, bar)
        dataset = open_dataset(args.data, limit=args.limit, progress=bar)
        with cluster_executor(cluster, model, args) as executor:
            result = run_search(
                model, dataset, settings, history, bench=bench, units=_units(model, args),
                progress=bar, executor=executor,
            )  # fmt: skip
    _say(f"calibration utterances: {', '.join(result.calibration_ids) or 'none needed'}")
    _say_notes(
        [result.evaluation, *[s.measurement for s in result.steps]], result.sensitivity.machine
    )
    _say_cluster(result.evaluation)
    print(
        f"{model.source}: objective {settings.objective}, budget "
        f"{settings.max_wer_increase:+.2f} WER points; search split {len(result.sensitivity.ids)}"
        f" utterances, evaluation split {len(result.eval_ids)}"
    )
    print(format_sensitivity(result.sensitivity, worst=1))
    print()
    print(format_search(result))
    if args.output:
        result.plan.save(Path(args.output))
        _say(f"wrote {args.output} ({len(result.plan.entries)} entries)")
    if args.json:
        _write_json(result.to_dict(), args.json)
    if args.plot:
        plot_search(result, Path(args.plot))
        _say(f"wrote {args.plot}")
    return 0
