"""``speechquant``: the headless command line (everything the GUI does)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from speechquant.core.cli import commands
from speechquant.core.cli.cluster_options import add_cluster_options
from speechquant.core.cli.doctor_command import add_doctor_parser
from speechquant.core.cli.listen import add_listen_parser
from speechquant.core.cli.outputs import check_outputs
from speechquant.core.cli.process import configure_process, release_unused_memory
from speechquant.core.cli.scheme_options import add_scheme_options
from speechquant.core.cli.search_commands import add_search_parsers
from speechquant.core.errors import Cancelled, SpeechquantError
from speechquant.core.evaluation.metrics import DEFAULT_NORMALIZER, NORMALIZERS
from speechquant.core.progress import user_warnings
from speechquant.core.quantization.presets import PRESETS
from speechquant.core.quantization.settings import ENGINES

SOURCE_HELP = (
    "model: a built-in (demo:whisper-tiny-en, demo:whisper-base, replica:wav2vec2-{tiny,base,large}), "
    "a local SpeechBrain model folder, an export folder, or a Hugging Face id (needs network)"
)
DATA_HELP = (
    "data: a LibriSpeech tree, a CSV/TSV manifest (ID,duration,wav,wrd), a Common Voice TSV, a folder of "
    "audio files with .txt sidecars, 'demo' (32 real LJSpeech utterances, shipped) or "
    "'demo:synthetic' (Festival-synthesized sentences)"
)


def _bench_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help=SOURCE_HELP)
    parser.add_argument("--data", required=True, help=DATA_HELP)
    parser.add_argument(
        "--calib",
        help="calibration DATA for static entries (default: DATA, disjoint from the evaluated utterances)",
    )
    parser.add_argument(
        "--calib-n", type=int, default=10, help="calibration utterances (default 10)"
    )
    parser.add_argument("--limit", type=int, help="evaluate the first N utterances (sorted order)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed warm-up utterances (default 1)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed repeats per utterance, median kept (default 1)",
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--engine", choices=ENGINES, help="quantized engine (overrides the plan's)")
    parser.add_argument(
        "--normalizer",
        choices=sorted(NORMALIZERS),
        default=DEFAULT_NORMALIZER,
        help="text normalizer for WER (default %(default)s)",
    )
    parser.add_argument(
        "--no-encoder-rtf", action="store_true", help="skip the encoder-only timing pass"
    )
    parser.add_argument(
        "--no-history", action="store_true", help="do not record the run in the history"
    )
    parser.add_argument(
        "--json", metavar="OUT", help="write the result as JSON to OUT ('-' for stdout)"
    )


TRUST_HELP = (
    "build a model folder whose hyperparams.yaml names classes or functions outside "
    "speechquant's allowlist (it runs that code; only for folders you trust)"
)


LANGUAGE_HELP = (
    "language code for a multilingual Whisper's decoder prompt, such as en, de, fr (default: the "
    "model's own, en for demo:whisper-base); English-only Whisper takes only en, other models none"
)


def _add_source_options(sub: argparse._SubParsersAction) -> None:
    """``--trust-code`` and ``--language`` on every command that takes SOURCE."""
    for parser in sub.choices.values():
        if any(action.dest == "source" for action in parser._actions):
            parser.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
            parser.add_argument("--language", metavar="CODE", help=LANGUAGE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechquant",
        description="Quantize SpeechBrain ASR models per module and measure WER and RTF against the float model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tree", help="show the module tree and which schemes apply where")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--depth", type=int, help="show modules down to this depth")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=commands.cmd_tree)

    p = sub.add_parser("plan", help="write a preset plan, or --check a plan file against a model")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument(
        "--preset", choices=list(PRESETS), default="tutorial", help="preset (default tutorial)"
    )
    p.add_argument("-o", "--output", help="write the plan to this JSON file (default: stdout)")
    p.add_argument("--check", metavar="PLAN", help="validate PLAN against SOURCE instead")
    p.add_argument(
        "--engine", choices=ENGINES, help="quantized engine recorded in the plan (default x86)"
    )
    add_scheme_options(p)
    p.set_defaults(func=commands.cmd_plan)

    p = sub.add_parser("bench", help="WER and RTF of one model (quantized by --plan if given)")
    _bench_options(p)
    p.add_argument("--plan", help="plan JSON to apply")
    p.set_defaults(func=commands.cmd_bench)

    p = sub.add_parser("compare", help="the float baseline and each plan/preset as a table")
    _bench_options(p)
    p.add_argument("--plan", action="append", default=[], help="plan JSON (repeatable)")
    p.add_argument(
        "--preset", action="append", default=[], choices=list(PRESETS), help="preset (repeatable)"
    )
    p.add_argument("--plot", metavar="PNG", help="write a WER-vs-RTF chart")
    add_cluster_options(p)
    p.set_defaults(func=commands.cmd_compare)

    p = sub.add_parser("export", help="quantize by a plan and write a folder that reloads anywhere")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--plan", required=True, help="plan JSON to apply")
    p.add_argument("--calib", help="calibration DATA (needed by static entries)")
    p.add_argument("--calib-n", type=int, default=10, help="calibration utterances (default 10)")
    p.add_argument("--engine", choices=ENGINES, help="quantized engine (overrides the plan's)")
    p.add_argument("--out", required=True, help="export folder to write")
    p.add_argument("--force", action="store_true", help="replace an earlier export in --out")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("transcribe", help="print transcripts of audio files")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("--plan", help="plan JSON to apply first (one without calibrated schemes)")
    p.add_argument("--engine", choices=ENGINES)
    p.set_defaults(func=commands.cmd_transcribe)

    add_listen_parser(sub, SOURCE_HELP, DATA_HELP)
    add_search_parsers(sub, SOURCE_HELP, DATA_HELP)
    add_doctor_parser(sub)

    _add_source_options(sub)

    p = sub.add_parser("history", help="list past runs from the results store")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--limit", type=int, help="newest N runs")
    p.add_argument("--source", help="only runs of this SOURCE")
    p.add_argument("--show", type=int, metavar="ID", help="print one run in full")
    p.add_argument("--delete", type=int, metavar="ID", help="delete one run")
    p.add_argument("--tagged", metavar="TAG", help="only runs carrying TAG")
    p.add_argument(
        "--name", nargs=2, metavar=("ID", "TEXT"), help='name run ID ("" removes the name)'
    )
    p.add_argument("--tag", nargs=2, metavar=("ID", "TAG"), help="add TAG to run ID")
    p.add_argument("--untag", nargs=2, metavar=("ID", "TAG"), help="remove TAG from run ID")
    p.add_argument(
        "--note", nargs=2, metavar=("ID", "TEXT"), help='set the note of run ID ("" removes it)'
    )
    p.set_defaults(func=commands.cmd_history)

    p = sub.add_parser(
        "demo",
        help="compare presets on demo:whisper-tiny-en with the built-in real speech (LJSpeech)",
    )
    p.add_argument(
        "--limit", type=int, help="evaluate the first N of the 32 demo utterances (default: all)"
    )
    p.add_argument(
        "--calib-n",
        type=int,
        default=10,
        help="calibration utterances from demo:synthetic for static entries (default 10)",
    )
    p.add_argument("--plot", default="speechquant-demo.png", help="chart PNG (default %(default)s)")
    p.set_defaults(func=commands.cmd_demo)
    return parser


def _warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    configure_process()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    release_unused_memory()
    try:
        with user_warnings(_warn):
            check_outputs(args)
            return int(args.func(args))
    except (KeyboardInterrupt, Cancelled):
        print("error: cancelled", file=sys.stderr)
        return 130
    except SpeechquantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
