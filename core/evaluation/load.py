"""How busy the machine was during a measurement, from ``/proc``, and the thread guard.

:class:`LoadMonitor` samples ``/proc/stat`` (CPU time of the whole machine), ``/proc/loadavg``
and this process's own CPU time at the start and end of a run. CPU time the machine spent
outside this process is the time other processes took; when it averages
:data:`BUSY_SHARE` of the machine's CPUs or more, timings were distorted and the run says so.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechquant.core.machine import available_cores

BUSY_SHARE = 0.25
"""Other processes' average share of the machine's CPUs from which a run counts as busy."""

_PROC = Path("/proc")


def parse_proc_stat(text: str) -> tuple[float, int]:
    """Busy CPU jiffies of the whole machine (the aggregate ``cpu`` line) and the CPU count.

    Busy is everything but idle and iowait; ``steal`` counts as busy (another guest had the CPU).
    """
    busy = 0.0
    cpus = 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "cpu":
            values = [float(v) for v in parts[1:9]]
            values += [0.0] * (8 - len(values))
            user, nice, system, _idle, _iowait, irq, softirq, steal = values
            busy = user + nice + system + irq + softirq + steal
        elif parts[0].startswith("cpu") and parts[0][3:].isdigit():
            cpus += 1
    return busy, cpus


def parse_loadavg(text: str) -> tuple[float, float, float]:
    one, five, fifteen = (float(v) for v in text.split()[:3])
    return one, five, fifteen


def _read(name: str) -> str | None:
    try:
        return (_PROC / name).read_text()
    except OSError:
        return None


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class _Sample:
    wall: float
    machine_busy: float | None
    own: float
    cpus: int


def _sample() -> _Sample:
    stat = _read("stat")
    busy, cpus = parse_proc_stat(stat) if stat else (None, 0)
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return _Sample(time.monotonic(), None if busy is None else busy / hz, _own_cpu_seconds(), cpus)


@dataclass(frozen=True)
class LoadReport:
    """The machine's load during one run."""

    loadavg: list[float] | None
    """1, 5 and 15 minute load averages at the end of the run (``None`` without ``/proc``)."""
    other_cpu_seconds: float | None
    """CPU seconds the machine spent outside this process during the run."""
    other_cores: float | None
    """``other_cpu_seconds`` over the run's wall time: cores other processes kept busy on average."""
    wall_seconds: float
    cpus: int
    busy: bool
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "loadavg": self.loadavg,
            "other_cpu_seconds": self.other_cpu_seconds,
            "other_cores": self.other_cores,
            "wall_seconds": self.wall_seconds,
            "cpus": self.cpus,
            "busy": self.busy,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadReport:
        return cls(
            loadavg=data.get("loadavg"),
            other_cpu_seconds=data.get("other_cpu_seconds"),
            other_cores=data.get("other_cores"),
            wall_seconds=float(data.get("wall_seconds") or 0.0),
            cpus=int(data.get("cpus") or 0),
            busy=bool(data.get("busy")),
            warnings=list(data.get("warnings") or []),
        )


def load_report(
    start: _Sample, end: _Sample, loadavg: tuple[float, float, float] | None
) -> LoadReport:
    wall = max(end.wall - start.wall, 1e-9)
    cpus = end.cpus or start.cpus or available_cores()
    other = None
    if start.machine_busy is not None and end.machine_busy is not None:
        other = max(0.0, (end.machine_busy - start.machine_busy) - (end.own - start.own))
    other_cores = None if other is None else other / wall
    busy = other_cores is not None and other_cores >= BUSY_SHARE * cpus
    warnings = []
    if busy and other_cores is not None:
        warnings.append(
            f"the machine was busy: other processes used {other_cores:.2f} of {cpus} CPUs on "
            "average during the run; paired speed-ups stay comparable, absolute RTFs do not"
        )
    return LoadReport(
        loadavg=None if loadavg is None else list(loadavg),
        other_cpu_seconds=other,
        other_cores=other_cores,
        wall_seconds=wall,
        cpus=cpus,
        busy=busy,
        warnings=warnings,
    )


class LoadMonitor:
    """``start()`` before a run and ``stop()`` after it gives the run's :class:`LoadReport`."""

    def __init__(self) -> None:
        self._start: _Sample | None = None

    def start(self) -> LoadMonitor:
        self._start = _sample()
        return self

    def stop(self) -> LoadReport:
        if self._start is None:
            raise RuntimeError("LoadMonitor.stop() before start()")
        text = _read("loadavg")
        return load_report(self._start, _sample(), parse_loadavg(text) if text else None)


def thread_warning(threads: int | None, cores: int | None = None) -> str | None:
    """A warning when ``threads`` exceeds the cores this process may use, else ``None``."""
    cores = available_cores() if cores is None else cores
    if threads is None or threads <= cores:
        return None
    return (
        f"threads {threads} exceed the {cores} cores available; the threads compete for the "
        f"cores and timings slow down and scatter; use at most {cores}"
    )
