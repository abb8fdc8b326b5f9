"""Start worker processes, run them in interleaved rounds, collect timings and transcripts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class System:
    """One row of the table: who runs it (interpreter, worker script) and how it loads."""

    label: str
    python: str
    worker: str
    options: dict[str, str] = field(default_factory=dict)

    def command(self, audio: Path, threads: int) -> list[str]:
        args = [self.python, str(HERE / self.worker), "--system", self.label]
        args += ["--audio", str(audio), "--threads", str(threads)]
        for key, value in self.options.items():
            args += ["--option", f"{key}={value}"]
        return args


@dataclass
class SystemRun:
    """What one system did over all timed rounds."""

    system: System
    seconds: np.ndarray
    """rounds x utterances."""
    texts: list[str]
    """Transcripts of the last round."""
    stable_texts: bool
    """Whether every round gave the same transcripts."""
    peak_rss_mb: float
    load_seconds: float


class WorkerError(RuntimeError):
    """A worker failed to start or answer; the message names the system and its log."""


class Worker:
    """One live worker process speaking the protocol of ``protocol.py``."""

    def __init__(self, system: System, audio: Path, threads: int, log_dir: Path) -> None:
        self.system = system
        self.log = log_dir / f"{system.label.replace(' ', '_').replace('/', '_')}.log"
        self._log_file = self.log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            system.command(audio, threads),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        ready = self._receive()
        self.load_seconds = float(ready["load_seconds"])

    def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            tail = self.log.read_text(encoding="utf-8").strip().splitlines()[-5:]
            raise WorkerError(
                f"{self.system.label}: worker exited with code {self.process.returncode}; "
                f"end of {self.log}:\n  " + "\n  ".join(tail)
            )
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise WorkerError(f"{message['error']} (log: {self.log})")
        return message

    def run(self, ids: list[str]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": "run", "ids": ids}) + "\n")
        self.process.stdin.flush()
        return self._receive()

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def run_interleaved(
    systems: list[System],
    ids: list[str],
    *,
    audio: Path,
    threads: int,
    rounds: int,
    warmup_ids: list[str],
    log_dir: Path,
    on_round: Callable[[int, list[SystemRun]], None] | None = None,
) -> list[SystemRun]:
    """Load every system, warm each up untimed, then time ``rounds`` rounds in rotating order.

    All workers stay alive for the whole run and only one computes at a time; round ``r`` starts
    with system ``r mod n``, so no system always runs first or right after the same neighbour.
    ``on_round(done, runs)`` is told what the first ``done`` rounds measured after each round.
    """
    workers: list[Worker] = []
    try:
        for system in systems:
            _say(f"loading {system.label}")
            workers.append(Worker(system, audio, threads, log_dir))
        for worker in workers:
            _say(f"warm-up {worker.system.label} ({len(warmup_ids)} utterances, untimed)")
            worker.run(warmup_ids)
        seconds: list[list[list[float]]] = [[] for _ in workers]
        texts: list[list[list[str]]] = [[] for _ in workers]
        peaks = [0.0 for _ in workers]
        runs: list[SystemRun] = []
        for r in range(rounds):
            order = [(r + k) % len(workers) for k in range(len(workers))]
            for index in order:
                answer = workers[index].run(ids)
                seconds[index].append(answer["seconds"])
                texts[index].append(answer["texts"])
                peaks[index] = max(peaks[index], float(answer["peak_rss_mb"]))
                rtf_note = sum(answer["seconds"])
                _say(f"round {r + 1}/{rounds} {workers[index].system.label}: {rtf_note:.1f} s")
            runs = [
                SystemRun(
                    system=worker.system,
                    seconds=np.array(seconds[i]),
                    texts=texts[i][-1],
                    stable_texts=all(t == texts[i][0] for t in texts[i]),
                    peak_rss_mb=peaks[i],
                    load_seconds=worker.load_seconds,
                )
                for i, worker in enumerate(workers)
            ]
            if on_round is not None:
                on_round(r + 1, runs)
        return runs
    finally:
        for worker in workers:
            worker.close()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
