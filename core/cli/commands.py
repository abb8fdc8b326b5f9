"""The CLI commands: thin front ends over core calls."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from speechquant.core.cli.cluster_options import cluster_executor, cluster_note, cluster_settings
from speechquant.core.cli.process import release_unused_memory
from speechquant.core.cli.runs_table import format_runs_table
from speechquant.core.cli.scheme_options import scheme_settings
from speechquant.core.cli.tqdm_progress import TqdmProgress
from speechquant.core.data.datasets import DEMO, DEMO_SYNTHETIC, open_dataset
from speechquant.core.errors import DataError, ExportError, PlanError
from speechquant.core.evaluation.bench import BenchSettings, state_dict_bytes
from speechquant.core.evaluation.doctor import cached_report, run_doctor
from speechquant.core.evaluation.experiment import run_baseline, run_compare, run_experiment
from speechquant.core.evaluation.history import HistoryStore
from speechquant.core.evaluation.load import thread_warning
from speechquant.core.evaluation.results import BenchResult
from speechquant.core.evaluation.tables import (
    ci_text,
    delta_text,
    format_comparison,
    significance,
    speedup_text,
    trust_notes,
)
from speechquant.core.export.info import export_info
from speechquant.core.machine import this_cpu
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import ProgressCallback
from speechquant.core.quantization.decoder_step import check_decoder_step
from speechquant.core.quantization.estimate import estimate_plan, summary_text
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import AUTO, make_preset
from speechquant.core.quantization.schemes import get_scheme, scheme_advice
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import ModuleTree, build_tree, format_tree
from speechquant.core.quantization.validation import plan_warnings, validate_plan
from speechquant.core.sources import open_model


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _write_json(data: Any, target: str) -> None:
    text = json.dumps(data, indent=2, default=str)
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text + "\n")
        _say(f"wrote {target}")


def warn_threads(threads: int | None) -> None:
    text = thread_warning(threads)
    if text:
        _say(f"warning: {text}")


def say_trust_notes(results: list[BenchResult]) -> None:
    """Busy-machine and pairing warnings, and where the figures were measured."""
    for text in trust_notes(results):
        _say(f"warning: {text}")
    machine = results[0].machine
    if machine is not None:
        load = results[0].load
        avg = f"; load average {load.loadavg[0]:.2f}" if load and load.loadavg else ""
        _say(f"measured on {machine.label()} (machine {machine.key}){avg}")


def bench_settings(args: argparse.Namespace) -> BenchSettings:
    """Bench settings from the shared bench options (commands without --no-encoder-rtf time it)."""
    warn_threads(args.threads)
    return BenchSettings(
        limit=args.limit,
        warmup=args.warmup,
        repeats=args.repeats,
        threads=args.threads,
        normalizer=args.normalizer,
        encoder_rtf=not getattr(args, "no_encoder_rtf", False),
        calib=args.calib,
        calib_n=args.calib_n,
    )


def open_source(args: argparse.Namespace, progress: ProgressCallback | None) -> LoadedModel:
    """The command's SOURCE, opened as its ``--trust-code`` and ``--language`` say.

    What loading it left behind and the CUDA libraries' pages are released afterwards
    (:func:`release_unused_memory`).
    """
    model = open_model(
        args.source, progress=progress, trust_code=args.trust_code, language=args.language
    )
    release_unused_memory()
    return model


def _load_plan(path: str, engine: str | None) -> Plan:
    plan = Plan.load(path)
    if engine:
        plan.settings = QuantSettings(**{**plan.settings.__dict__, "engine": engine})
    return plan


def cmd_tree(args: argparse.Namespace) -> int:
    with TqdmProgress() as bar:
        model = open_source(args, bar)
    tree = build_tree(model.mods)
    advice = scheme_advice(this_cpu(), measured_speedups())
    if args.json:
        print(
            json.dumps(
                {
                    "source": model.source,
                    "interface": model.interface,
                    "language": model.language,
                    "tree": tree.root.to_dict(args.depth),
                    "advice": advice,
                },
                indent=2,
            )
        )
    else:
        language = f", language {model.language}" if model.language else ""
        print(
            f"{model.source} ({model.interface}{language}), {tree.root.total_params:,} parameters"
        )
        info = export_info(model)
        for line in info.lines(with_warnings=False) if info is not None else []:
            print(line)
        print(format_tree(tree, args.depth, advice))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    with TqdmProgress() as bar:
        model = open_source(args, bar)
    tree = build_tree(model.mods)
    if args.check:
        plan = Plan.load(args.check)
        validate_plan(plan, tree)
        check_decoder_step(plan.settings.decoder_step, model.mods, model.source)
        print(
            f"{args.check}: valid for {model.source} ({', '.join(f'{k}: {v}' for k, v in plan.summary().items()) or 'float'})"
        )
        print(f"estimate: {summary_text(estimate_plan(tree, plan))}")
    else:
        settings = scheme_settings(args, engine=args.engine or "x86")
        plan = preset_plan(
            args.preset, tree, settings if args.engine or args.preset != AUTO else None
        )
        plan.settings = replace(plan.settings, decoder_step=settings.decoder_step)
        check_decoder_step(plan.settings.decoder_step, model.mods, model.source)
        if args.output:
            plan.save(Path(args.output))
            _say(f"wrote {args.output} ({len(plan.entries)} entries)")
        else:
            print(json.dumps(plan.to_dict(), indent=2))
        _say(f"estimate: {summary_text(estimate_plan(tree, plan))}")
    say_plan_warnings([plan])
    return 0


def measured_speedups() -> dict[str, float]:
    """This machine's doctor figures for the schemes' advice (empty when never measured)."""
    report = cached_report()
    return report.clear_speedups() if report else {}


def say_plan_warnings(plans: list[Plan]) -> None:
    """Each plan's speed warnings for this machine (its schemes, its engine), each line once."""
    report = cached_report()
    speedups = report.clear_speedups() if report else {}
    engines = report.engine_speeds() if report else []
    lines = [w for p in plans for w in plan_warnings(p, this_cpu(), speedups, engines)]
    for warning in dict.fromkeys(lines):
        _say(f"warning: {warning}")


def preset_plan(
    name: str,
    tree: ModuleTree,
    settings: QuantSettings | None,
    progress: ProgressCallback | None = None,
) -> Plan:
    """A preset's plan; ``auto`` reads this machine's doctor report (measured first if absent)."""
    if name != AUTO:
        return make_preset(name, tree, settings)
    report = cached_report()
    if report is None:
        _say("auto: no doctor report for this machine yet; measuring the schemes here (~10 s)")
        report = run_doctor(progress=progress)
    _say(f"auto: scheme speeds measured on {report.machine.label()} at {report.measured_at}")
    return make_preset(name, tree, settings, speeds=report.measured_speeds())


def cmd_bench(args: argparse.Namespace) -> int:
    settings = bench_settings(args)
    plan = _load_plan(args.plan, args.engine) if args.plan else None
    if plan is not None:
        say_plan_warnings([plan])
    with TqdmProgress() as bar:
        model = open_source(args, bar)
        dataset = open_dataset(args.data, progress=bar)
        history = None if args.no_history else HistoryStore()
        if plan is not None:
            experiment = run_experiment(model, plan, dataset, settings, history, progress=bar)
        else:
            experiment = run_baseline(model, dataset, settings, history, reuse=False, progress=bar)
    result = experiment.bench
    if experiment.calibration_ids:
        _say(
            f"calibrated on {len(experiment.calibration_ids)} utterances: {', '.join(experiment.calibration_ids)}"
        )
    for item in result.skipped:
        _say(f"skipped {item['id']}: {item['reason']}")
    enc = "-" if result.rtf_encoder is None else f"{result.rtf_encoder:.4f}"
    print(
        f"{result.source} [{result.name}] WER {result.wer:.2f}% {ci_text(result.wer_ci)} "
        f"({result.n_utterances} utt, {result.audio_seconds:.1f} s)  RTF {result.rtf:.4f}  "
        f"encoder RTF {enc}  size {result.model_bytes / 1e6:.1f} MB  engine {result.engine}  "
        f"threads {result.threads}" + (f"  language {result.language}" if result.language else "")
    )
    c = result.comparison
    if c is not None:
        print(
            f"against float32 timed alongside: ΔWER {delta_text(c)}, P(worse) "
            f"{'-' if c.p_worse is None else f'{c.p_worse:.2f}'}, speed-up "
            f"{speedup_text(c.speedup, c.speedup_ci, significance(c).speed)}, encoder "
            f"{speedup_text(c.speedup_encoder, c.speedup_encoder_ci)}, {c.size_ratio:.2f}x smaller"
        )
    say_trust_notes([result])
    if args.json:
        _write_json(result.to_json(), args.json)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    settings = bench_settings(args)
    cluster = cluster_settings(args)
    with TqdmProgress() as bar:
        model = open_source(args, bar)
        dataset = open_dataset(args.data, progress=bar)
        tree = build_tree(model.mods)
        plans = [_load_plan(p, args.engine) for p in args.plan]
        plans += [
            preset_plan(name, tree, QuantSettings(engine=args.engine) if args.engine else None, bar)
            for name in args.preset
        ]
        say_plan_warnings(plans)
        history = None if args.no_history else HistoryStore()
        with cluster_executor(cluster, model, args) as executor:
            experiments = run_compare(
                model, plans, dataset, settings, history, progress=bar, executor=executor
            )
    results = [e.bench for e in experiments]
    print(format_comparison(results))
    say_trust_notes(results)
    note = cluster_note(results[0])
    if note:
        _say(note)
    if args.json:
        _write_json([r.to_json() for r in results], args.json)
    if args.plot:
        from speechquant.core.evaluation.plots import plot_wer_vs_rtf

        plot_wer_vs_rtf([r.to_json() for r in results], Path(args.plot))
        _say(f"wrote {args.plot}")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from speechquant.core.data.audio import load_audio
    from speechquant.core.evaluation.bench import transcription_failure
    from speechquant.core.quantization.apply import apply_plan

    for file in args.files:
        if not Path(file).is_file():
            what = "is a folder, not an audio file" if Path(file).is_dir() else "does not exist"
            raise DataError(f"audio file {file} {what}; check the path")
    plan = _load_plan(args.plan, args.engine) if args.plan else None
    calibrated = sorted(
        {s for s in (plan.entries.values() if plan else ()) if get_scheme(s).needs_calibration}
    )
    if calibrated:
        raise PlanError(
            f"transcribe applies plans without calibration only ({', '.join(calibrated)} needs it); "
            "use 'speechquant export' with --calib, then transcribe the export"
        )
    with TqdmProgress() as bar:
        model = open_source(args, bar)
    if plan is not None:
        model = apply_plan(model, plan)
    status = 0
    for file in args.files:
        try:
            wav = load_audio(file, model.sample_rate)
            transcript = model.transcribe_windows(wav)
        except Exception as exc:  # reported and skipped, never fatal
            _say(f"skipped {file}: {transcription_failure(exc)}")
            status = 1
            continue
        windows = transcript.chunking(model.sample_rate)
        if windows:
            _say(f"{file}: long audio transcribed in {len(windows)} windows cut at pauses")
        print(f"{file}\t{transcript.text}")
    return status


def _run_id(option: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(
            f"{option} takes a run id first, got {text!r}; list the ids with `speechquant history`"
        ) from None


def _annotate(store: HistoryStore, args: argparse.Namespace) -> bool:
    """Apply --name/--tag/--untag/--note; False when none was given."""
    changes = [
        (option, pair)
        for option, pair in (
            ("--name", args.name),
            ("--tag", args.tag),
            ("--untag", args.untag),
            ("--note", args.note),
        )
        if pair is not None
    ]
    for option, (text_id, value) in changes:
        run_id = _run_id(option, text_id)
        if option == "--name":
            notes = store.annotate(run_id, name=value)
        elif option == "--note":
            notes = store.annotate(run_id, note=value)
        elif option == "--tag":
            notes = store.tag(run_id, value)
        else:
            notes = store.untag(run_id, value)
        tags = ", ".join(notes.tags) or "none"
        _say(f"run {run_id}: name {notes.name or '-'}, tags {tags}, note {notes.note or '-'}")
    return bool(changes)


def cmd_history(args: argparse.Namespace) -> int:
    store = HistoryStore()
    if _annotate(store, args):
        return 0
    if args.delete is not None:
        store.delete_run(args.delete)
        _say(f"deleted run {args.delete}")
        return 0
    if args.show is not None:
        print(json.dumps(store.get_run(args.show), indent=2, default=str))
        return 0
    if args.limit is not None and args.limit < 1:
        raise DataError(f"--limit must be at least 1 (or left out for all), got {args.limit}")
    runs = store.list_runs(limit=args.limit, source=args.source, tag=args.tagged)
    if args.json:
        print(json.dumps([r.as_dict() for r in runs], indent=2, default=str))
    else:
        print(format_runs_table(runs, lambda run_id: store.get_run(run_id).get("comparison")))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = BenchSettings(
        limit=args.limit, warmup=1, repeats=1, calib=DEMO_SYNTHETIC, calib_n=args.calib_n
    )
    with TqdmProgress() as bar:
        _say("opening demo:whisper-tiny-en (converted on first use) and the demo speech")
        model = open_model("demo:whisper-tiny-en", progress=bar)
        dataset = open_dataset(DEMO, limit=args.limit, progress=bar)
        _say(
            f"evaluating on {dataset.describe()}; static entries calibrate on {args.calib_n} "
            f"{DEMO_SYNTHETIC} utterances (another voice and text, disjoint by construction)"
        )
        tree = build_tree(model.mods)
        plans = [make_preset(name, tree) for name in ("tutorial", "all-dynamic", "bf16")]
        experiments = run_compare(model, plans, dataset, settings, HistoryStore(), progress=bar)
    results = [e.bench for e in experiments]
    print(
        f"demo:whisper-tiny-en on the demo speech: {dataset.describe()}; "
        f"{results[0].threads} threads"
    )
    print(format_comparison(results))
    say_trust_notes(results)
    from speechquant.core.evaluation.plots import plot_wer_vs_rtf

    plot_wer_vs_rtf([r.to_json() for r in results], Path(args.plot))
    _say(f"wrote {args.plot}")
    return 0


def _size_ratio(size: int, float_bytes: int) -> str:
    if size <= float_bytes:
        return f"{float_bytes / size:.2f}x smaller"
    return f"{size / float_bytes:.2f}x larger"


def cmd_export(args: argparse.Namespace) -> int:
    from speechquant.core.evaluation.experiment import quantize_model
    from speechquant.core.export.writer import export_model

    settings = BenchSettings(calib=args.calib, calib_n=args.calib_n)
    plan = _load_plan(args.plan, args.engine)
    say_plan_warnings([plan])
    with TqdmProgress() as bar:
        model = open_source(args, bar)
        if model.plan is not None:
            raise ExportError(
                f"{model.source} is already an export (plan '{model.plan.name}'); export from the "
                f"float model it was made from ({model.metadata.get('source')}) with the new plan"
            )
        quantized, calib_ids = quantize_model(model, plan, None, settings, progress=bar)
        out = export_model(
            quantized, Path(args.out), calibration_ids=calib_ids, progress=bar, overwrite=args.force
        )
    float_bytes = state_dict_bytes(model.mods)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if calib_ids:
        _say(f"calibrated on {len(calib_ids)} utterances: {', '.join(calib_ids)}")
    print(
        f"exported {model.source} [{plan.name}] to {out}: {size / 1e6:.1f} MB on disk, "
        f"float state_dict {float_bytes / 1e6:.1f} MB ({_size_ratio(size, float_bytes)}); "
        "loaded back and checked"
    )
    return 0
