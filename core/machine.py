"""What machine this is: CPU model, the instruction-set features that decide quantized speed, cores.

Every measurement carries a :class:`MachineInfo` (``to_json()``) so a figure always says which
machine produced it, and runs from different machines are never paired or put on one front.
``describe_cpu`` reads ``/proc/cpuinfo`` text, so tests inject descriptions of other CPUs.
"""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: cpuinfo flag -> the feature name shown to users (x86 and ARM spellings).
FEATURE_FLAGS: dict[str, str] = {
    "avx2": "avx2",
    "fma": "fma",
    "avx512f": "avx512f",
    "avx512_vnni": "avx512_vnni",
    "avx512vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "avx512_bf16": "avx512_bf16",
    "amx_tile": "amx_tile",
    "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
    "asimd": "neon",
    "neon": "neon",
    "asimddp": "dotprod",
    "bf16": "arm_bf16",
    "i8mm": "i8mm",
    "sve": "sve",
}


@dataclass(frozen=True)
class CpuInfo:
    """The CPU as far as quantized speed is concerned."""

    model: str
    arch: str
    features: tuple[str, ...] = ()

    @property
    def native_bf16(self) -> bool:
        """bf16 matrix products run in hardware (AVX512-BF16, AMX-BF16 or ARM BF16)."""
        return bool({"avx512_bf16", "amx_bf16", "arm_bf16"} & set(self.features))

    @property
    def int8_dot(self) -> bool:
        """int8 dot-product instructions (VNNI, AMX-INT8 or ARM dotprod/i8mm)."""
        return bool({"avx512_vnni", "avx_vnni", "amx_int8", "dotprod", "i8mm"} & set(self.features))

    def summary(self) -> str:
        """One short line, e.g. ``AMD EPYC (x86_64; avx2, fma)``."""
        shown = ", ".join(self.features) if self.features else "no SIMD features read"
        return f"{self.model} ({self.arch}; {shown})"


def describe_cpu(cpuinfo: str, arch: str | None = None) -> CpuInfo:
    """Parse ``/proc/cpuinfo`` text (x86 ``flags`` or ARM ``Features``) into a :class:`CpuInfo`."""
    model = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key == "cpu part" and not model:
            model = f"ARM part {value.strip()}"
    found = sorted({name for flag, name in FEATURE_FLAGS.items() if flag in flags})
    return CpuInfo(
        model=model or "unknown CPU", arch=arch or platform.machine(), features=tuple(found)
    )


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def this_cpu() -> CpuInfo:
    """The CPU this process runs on."""
    text = _read_cpuinfo()
    if not text:
        return CpuInfo(model=platform.processor() or "unknown CPU", arch=platform.machine())
    return describe_cpu(text)


@dataclass(frozen=True)
class MachineInfo:
    """Where a result was measured: CPU, cores, the threads the run used, torch's CPU capability."""

    cpu: CpuInfo
    cores: int
    threads: int | None = None
    capability: str = ""
    system: str = field(default_factory=platform.system)

    @property
    def key(self) -> str:
        """Identifies the kind of machine (CPU model, features, cores); equal keys pair."""
        text = "|".join(
            [self.cpu.model, self.cpu.arch, ",".join(self.cpu.features), str(self.cores)]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def label(self) -> str:
        threads = f", {self.threads} threads" if self.threads else ""
        return f"{self.cpu.model}, {self.cores} cores{threads}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu"]["features"] = list(self.cpu.features)
        data["key"] = self.key
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MachineInfo:
        cpu = data.get("cpu") or {}
        return cls(
            cpu=CpuInfo(
                model=str(cpu.get("model", "unknown CPU")),
                arch=str(cpu.get("arch", "")),
                features=tuple(cpu.get("features", ())),
            ),
            cores=int(data.get("cores", 0)),
            threads=data.get("threads"),
            capability=str(data.get("capability", "")),
            system=str(data.get("system", "")),
        )


def torch_cpu_capability() -> str:
    """torch's own reading of the CPU (``AVX2``, ``AVX512``, ``DEFAULT`` …); imports torch."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return ""


def this_machine(threads: int | None = None) -> MachineInfo:
    """This machine, with the thread count a run used."""
    return MachineInfo(
        cpu=this_cpu(), cores=available_cores(), threads=threads, capability=torch_cpu_capability()
    )
