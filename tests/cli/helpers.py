"""What the process and CUDA-pages tests share: fresh interpreters and resident-page counts."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any


def run_python(code: str, *args: str) -> str:
    """The standard output of ``code`` run by a fresh interpreter with ``args``; a failing run
    raises :class:`subprocess.CalledProcessError`."""
    run = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return run.stdout


def python_json(code: str) -> Any:
    """The JSON that ``code``, run by a fresh interpreter, prints on its last line."""
    return json.loads(run_python(code).strip().splitlines()[-1])


def smaps_rss_kb(matches: Callable[[str], bool]) -> int:
    """Resident KB of this process's mappings of the files ``matches`` accepts."""
    total, inside = 0, False
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                inside = len(head) > 5 and matches(head[5])
            elif inside and head and head[0] == "Rss:":
                total += int(head[1])
    return total


SMAPS_RSS_KB = "from collections.abc import Callable\n\n" + inspect.getsource(smaps_rss_kb)
"""The source of :func:`smaps_rss_kb`, for the scripts run in a fresh interpreter."""

LIBC = """
import ctypes

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def status_kb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
"""
"""glibc's malloc and free, and a ``/proc/self/status`` figure in KB, for fresh interpreters."""
