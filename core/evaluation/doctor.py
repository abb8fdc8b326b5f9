"""``speechquant doctor``: this machine, its versions, and what each scheme does to speed here.

The micro-benchmark times one ``nn.Linear`` per typical ASR shape in float32 and under every
registered scheme (dynamic and static once per quantized engine), interleaved round by round in
a rotating order so background load hits every variant alike. Each round gives one time ratio
per variant against float32 *from the same round*; the verdict is the median ratio over rounds
(per shape), then the geometric mean over shapes, with a 95 % stratified bootstrap interval. Reports are cached per machine (CPU model, features,
cores) and torch version in the user cache, so the tree, plan checks and the ``auto`` preset can
read them without measuring again.
"""

from __future__ import annotations

import copy
import json
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speechquant.core.errors import SpeechquantError
from speechquant.core.machine import MachineInfo, this_machine
from speechquant.core.paths import cache_dir
from speechquant.core.progress import CancelToken, ProgressCallback, check, report
from speechquant.core.quantization.apply import set_engine
from speechquant.core.quantization.presets import MeasuredSpeed
from speechquant.core.quantization.schemes import all_schemes, scheme_advice
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.validation import EngineSpeed

REPORT_FORMAT = 1
#: (label, rows, in_features, out_features): Whisper tiny encoder FFN over 30 s, one Whisper
#: decoder step, a wav2vec2-large FFN over 5 s of audio.
SHAPES: tuple[tuple[str, int, int, int], ...] = (
    ("whisper-tiny encoder FFN", 1500, 384, 1536),
    ("decoder step", 1, 384, 1536),
    ("wav2vec2-large FFN", 250, 1024, 4096),
)
#: Engines not timed per architecture (qnnpack is the ARM mobile engine; on x86 it is slow and
#: its kernels print a warning per call).
SKIPPED_ENGINES = {"x86_64": ("qnnpack",), "AMD64": ("qnnpack",)}
VERSION_PACKAGES = ("torch", "torchaudio", "speechbrain", "transformers", "PySide6-Essentials")


@dataclass(frozen=True)
class SchemeSpeed:
    """One scheme (and engine) against float32 on this machine: ratio > 1 means faster."""

    scheme: str
    engine: str | None
    speedup: float
    speedup_ci: tuple[float, float]
    per_shape: dict[str, float]

    @property
    def variant(self) -> str:
        return f"{self.scheme} ({self.engine})" if self.engine else self.scheme

    def verdict(self) -> str:
        """``faster here``, ``slower here`` or ``no clear difference here``, by how much.

        Faster or slower only when the whole 95 % interval is on that side of 1.
        """
        lo, hi = self.speedup_ci
        interval = f"{self.speedup:.2f}x float32 speed [95 %: {lo:.2f}-{hi:.2f}]"
        if lo > 1:
            return f"faster here: {interval}"
        if hi < 1:
            return f"slower here ({1 / self.speedup:.1f}x slower): {interval}"
        return f"no clear difference here: {interval}"


@dataclass
class DoctorReport:
    """Everything ``speechquant doctor`` found; ``to_json`` is its ``--json`` output."""

    machine: MachineInfo
    versions: dict[str, str]
    python: str
    engines: list[str]
    default_engine: str
    speeds: list[SchemeSpeed] = field(default_factory=list)
    rounds: int = 0
    seconds: float = 0.0
    measured_at: str = ""
    #: 1-minute load average before and after the timing (``/proc/loadavg``).
    loadavg: tuple[float, float] | None = None

    @property
    def busy(self) -> bool:
        """Other work kept more cores busy than this machine has: timings are distorted."""
        return self.loadavg is not None and max(self.loadavg) > self.machine.cores

    def measured_speeds(self) -> dict[str, MeasuredSpeed]:
        """Each measured scheme's best engine, as the ``auto`` preset reads it."""
        out = {}
        for scheme in {s.scheme for s in self.speeds}:
            best = self.best(scheme)
            assert best is not None
            out[scheme] = MeasuredSpeed(best.speedup, best.speedup_ci[0], best.engine)
        return out

    def clear_speedups(self) -> dict[str, float]:
        """Scheme -> its best engine's speed-up, where the interval clears 1 (either side).

        This is what the schemes' hardware advice reads: a measurement whose interval holds 1
        says nothing either way, so it is left out and the CPU's features speak instead.
        """
        out = {}
        for scheme in {s.scheme for s in self.speeds}:
            best = self.best(scheme)
            if best is not None and (best.speedup_ci[0] > 1 or best.speedup_ci[1] < 1):
                out[scheme] = best.speedup
        return out

    def engine_speeds(self) -> list[EngineSpeed]:
        """Every measured engine-dependent scheme under each engine, for the engine warnings."""
        return [
            EngineSpeed(s.scheme, s.engine, s.speedup, *s.speedup_ci)
            for s in self.speeds
            if s.engine is not None
        ]

    def best(self, scheme: str) -> SchemeSpeed | None:
        """The fastest measured engine of ``scheme``."""
        rows = [s for s in self.speeds if s.scheme == scheme]
        return max(rows, key=lambda s: s.speedup) if rows else None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "speechquant-doctor",
            "version": REPORT_FORMAT,
            "machine": self.machine.to_json(),
            "native_bf16": self.machine.cpu.native_bf16,
            "int8_dot": self.machine.cpu.int8_dot,
            "versions": self.versions,
            "python": self.python,
            "engines": self.engines,
            "default_engine": self.default_engine,
            "speeds": [
                {**asdict(s), "speedup_ci": list(s.speedup_ci), "verdict": s.verdict()}
                for s in self.speeds
            ],
            "rounds": self.rounds,
            "seconds": self.seconds,
            "measured_at": self.measured_at,
            "loadavg": list(self.loadavg) if self.loadavg else None,
            "busy": self.busy,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DoctorReport:
        if data.get("format") != "speechquant-doctor" or data.get("version") != REPORT_FORMAT:
            raise SpeechquantError("not a doctor report of this version")
        return cls(
            machine=MachineInfo.from_json(data["machine"]),
            versions=dict(data["versions"]),
            python=str(data["python"]),
            engines=list(data["engines"]),
            default_engine=str(data["default_engine"]),
            speeds=[
                SchemeSpeed(
                    scheme=s["scheme"],
                    engine=s["engine"],
                    speedup=float(s["speedup"]),
                    speedup_ci=(float(s["speedup_ci"][0]), float(s["speedup_ci"][1])),
                    per_shape={k: float(v) for k, v in s["per_shape"].items()},
                )
                for s in data["speeds"]
            ],
            rounds=int(data["rounds"]),
            seconds=float(data["seconds"]),
            measured_at=str(data["measured_at"]),
            loadavg=tuple(data["loadavg"]) if data.get("loadavg") else None,  # type: ignore[arg-type]
        )


def versions() -> dict[str, str]:
    found = {}
    for name in VERSION_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _variants(
    linear: nn.Linear, example: torch.Tensor, engines: Sequence[str]
) -> list[tuple[str, str | None, nn.Module]]:
    """float32 plus every registered scheme (per engine where it matters) of one Linear."""
    out: list[tuple[str, str | None, nn.Module]] = [("float32", None, linear)]
    for scheme in all_schemes():
        if scheme.name == "none" or not scheme.verdict(linear).applies:
            continue
        for engine in engines if scheme.uses_engine else [None]:
            settings = QuantSettings(engine=engine or "x86")
            if engine:
                set_engine(engine)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                variant = scheme.prepare(copy.deepcopy(linear), settings)
                if scheme.needs_calibration:
                    with torch.no_grad():
                        variant(example)
                variant = scheme.finalize(variant, settings).eval()
            out.append((scheme.name, engine, variant))
    return out


def timed_engines(arch: str) -> list[str]:
    """This torch's quantized engines worth timing on ``arch``."""
    skip = SKIPPED_ENGINES.get(arch, ())
    return [e for e in torch.backends.quantized.supported_engines if e not in ("none", *skip)]


def _time_for(module: nn.Module, x: torch.Tensor, engine: str | None, seconds: float) -> float:
    """Seconds per call, running ``module`` for about ``seconds`` of wall time (at least once)."""
    if engine:
        torch.backends.quantized.engine = engine
    calls = 0
    start = time.perf_counter()
    with torch.no_grad():
        while True:
            module(x)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return elapsed / calls


def summarize(
    per_shape: dict[str, list[float]], seed: int = 0, n: int = 2000
) -> tuple[float, tuple[float, float]]:
    """Geometric mean over shapes of each shape's median ratio, with a 95 % stratified bootstrap.

    Each bootstrap draw resamples every shape's rounds on its own, so a shape with a very
    different ratio (a one-row decoder step) widens nothing but its own share.
    """
    rng = np.random.default_rng(seed)
    groups = [np.asarray(v, dtype=float) for v in per_shape.values() if v]
    point = float(np.exp(np.mean([np.log(np.median(g)) for g in groups])))
    draws = np.zeros(n)
    for g in groups:
        picks = rng.integers(0, len(g), size=(n, len(g)))
        draws += np.log(np.median(g[picks], axis=1))
    draws = np.exp(draws / len(groups))
    return point, (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))


def measure_schemes(
    *,
    shapes: Sequence[tuple[str, int, int, int]] = SHAPES,
    rounds: int = 7,
    budget_seconds: float = 0.05,
    max_seconds: float = 12.0,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[list[SchemeSpeed], int]:
    """Interleaved paired timing of every scheme against float32; returns speeds and rounds.

    Each (shape, round) times all variants back to back in a rotating order, ``budget_seconds``
    each; the ratio float_time / variant_time of that round is one sample. A shape stops after
    its share of ``max_seconds`` once it has three rounds, so a busy machine still ends soon
    (with fewer rounds and so wider intervals).
    """
    engines = timed_engines(platform.machine())
    previous_engine = torch.backends.quantized.engine
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    samples: dict[tuple[str, str | None], dict[str, list[float]]] = {}
    torch.manual_seed(0)
    done_rounds = 0
    try:
        total = len(shapes) * rounds
        step = 0
        for label, rows, k, n in shapes:
            shape_start = time.perf_counter()
            linear = nn.Linear(k, n).eval()
            x = torch.randn(rows, k)
            variants = _variants(linear, x, engines)
            for _name, engine, module in variants:  # warm-up
                _time_for(module, x, engine, budget_seconds / 2)
            shape_ratios: dict[tuple[str, str | None], list[float]] = {}
            for r in range(rounds):
                check(cancel)
                order = variants[r % len(variants) :] + variants[: r % len(variants)]
                if r % 2:
                    order.reverse()
                times = {
                    (name, engine): _time_for(module, x, engine, budget_seconds)
                    for name, engine, module in order
                }
                base = times[("float32", None)]
                for key, value in times.items():
                    if key[0] != "float32":
                        shape_ratios.setdefault(key, []).append(base / value)
                step += 1
                done_rounds = max(done_rounds, r + 1)
                report(progress, step, total, "timing schemes against float32")
                if r >= 2 and time.perf_counter() - shape_start > max_seconds / len(shapes):
                    step += rounds - r - 1
                    break
            for key, values in shape_ratios.items():
                samples.setdefault(key, {})[label] = values
    finally:
        torch.backends.quantized.engine = previous_engine
        torch.set_num_threads(previous_threads)
    speeds = []
    for (name, engine), by_shape in samples.items():
        point, interval = summarize(by_shape)
        speeds.append(
            SchemeSpeed(
                scheme=name,
                engine=engine,
                speedup=point,
                speedup_ci=interval,
                per_shape={label: float(np.median(v)) for label, v in by_shape.items()},
            )
        )
    speeds.sort(key=lambda s: (s.scheme, s.engine or ""))
    return speeds, done_rounds


def read_loadavg() -> float | None:
    """The 1-minute load average, or None where ``/proc/loadavg`` is absent."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cache_file(machine: MachineInfo) -> Path:
    return cache_dir() / "doctor" / f"{machine.key}-torch{torch.__version__}.json"


def cached_report(machine: MachineInfo | None = None) -> DoctorReport | None:
    """This machine's last doctor report, if one was measured with this torch."""
    path = _cache_file(machine or this_machine())
    try:
        return DoctorReport.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, SpeechquantError):
        return None


def run_doctor(
    *,
    refresh: bool = False,
    measure: bool = True,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> DoctorReport:
    """The doctor report: cached for this machine unless ``refresh``; ``measure=False`` skips timing."""
    machine = this_machine(threads or torch.get_num_threads())
    if not refresh and measure:
        cached = cached_report(machine)
        if cached is not None:
            return cached
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    report_ = DoctorReport(
        machine=machine,
        versions=versions(),
        python=platform.python_version(),
        engines=engines,
        default_engine=torch.backends.quantized.engine,
    )
    if measure:
        start = time.perf_counter()
        before = read_loadavg()
        report_.speeds, report_.rounds = measure_schemes(
            threads=threads, progress=progress, cancel=cancel
        )
        after = read_loadavg()
        if before is not None and after is not None:
            report_.loadavg = (before, after)
        report_.seconds = round(time.perf_counter() - start, 1)
        report_.measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        path = _cache_file(machine)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report_.to_json(), indent=2))
        tmp.replace(path)
    return report_


def format_report(report: DoctorReport) -> str:
    """The report as the lines ``speechquant doctor`` prints (and the GUI shows)."""
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
        for advice in scheme_advice(cpu, report.clear_speedups()).values():
            lines.append(f"warning: {advice}")
    return "\n".join(lines)
