"""The JSON-lines protocol between bench_peers.py and its worker processes (stdlib + numpy only).

A worker is started as ``python WORKER --system NAME --audio AUDIO.npz --threads T [--option K=V]``.
It loads its system, then writes one JSON line ``{"ready": true, "load_seconds", "rss_mb"}``
(or ``{"error": "..."}``) to stdout and answers each request line on stdin:

``{"cmd": "run", "ids": [...]}``
    transcribe those utterances one by one; answer ``{"seconds": [...], "texts": [...],
    "peak_rss_mb": M}`` (seconds per utterance, waveform in to text out).
``{"cmd": "quit"}``
    exit.

Anything else a system prints goes to stderr, so stdout carries only protocol lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

Transcriber = Callable[[np.ndarray], str]
Loader = Callable[[str, dict[str, str], int], Transcriber]


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE for the loader")
    return parser.parse_args()


def serve(load: Loader) -> None:
    """Load the system named on the command line and answer requests until ``quit``."""
    args = parse_args()
    out = sys.stdout
    sys.stdout = sys.stderr  # libraries that print must not corrupt the protocol
    options = dict(item.split("=", 1) for item in args.option)
    audio = np.load(args.audio)
    start = time.perf_counter()
    try:
        transcribe = load(args.system, options, args.threads)
    except Exception as error:  # reported to the parent as one line, then exit non-zero
        traceback.print_exc()
        _send(out, {"error": f"{args.system}: {type(error).__name__}: {error}"})
        raise SystemExit(1) from None
    _send(
        out, {"ready": True, "load_seconds": time.perf_counter() - start, "rss_mb": peak_rss_mb()}
    )
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            return
        if request["cmd"] != "run":
            _send(out, {"error": f"unknown request {request['cmd']!r}"})
            continue
        seconds, texts = [], []
        for utterance_id in request["ids"]:
            wav = audio[utterance_id]
            begin = time.perf_counter()
            texts.append(transcribe(wav))
            seconds.append(time.perf_counter() - begin)
        _send(out, {"seconds": seconds, "texts": texts, "peak_rss_mb": peak_rss_mb()})


def _send(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()
