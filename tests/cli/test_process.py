"""The command's process settings: triton never loads, glibc returns freed memory, CUDA pages go."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# Runs in a fresh interpreter: prints how much of an 8 MB block freed after glibc raised its
# dynamic mmap threshold (by freeing a 20 MB block) is still mapped, in KB.
_FREED_BLOCK = """
import ctypes, sys
from speechquant.core.cli.process import fix_mmap_threshold

if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def vm_size():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))

libc.free(libc.malloc(20 << 20))
before = vm_size()
block = libc.malloc(8 << 20)
ctypes.memset(block, 1, 8 << 20)
libc.free(block)
print(vm_size() - before)
"""


def _still_mapped_kb(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _FREED_BLOCK, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_fixed_mmap_threshold_returns_a_freed_large_block_that_glibc_would_keep():
    assert _still_mapped_kb("default") >= 4096  # glibc's own behaviour: kept in its heap
    assert _still_mapped_kb("fixed") < 1024


def test_triton_cannot_be_imported_once_the_process_is_configured():
    code = (
        "import importlib.util, sys\n"
        "from speechquant.core.cli.process import configure_process\n"
        "configure_process()\n"
        "try:\n"
        "    import triton\n"
        "except ImportError:\n"
        "    print('refused', importlib.util.find_spec('triton'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "refused None"


def test_importing_the_cli_configures_nothing():
    code = "import sys\nimport speechquant.core.cli.main\nprint('triton' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Runs in a fresh interpreter: frees 20 MB of small blocks below a live one (so glibc cannot
# shrink its heap from the top by itself) and prints RssAnon in KB before and after the trim.
_SMALL_BLOCKS = """
import ctypes
from speechquant.core.cli.process import trim_malloc

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def rss_anon():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon:"))

blocks = [libc.malloc(1024) for _ in range(20480)]
for block in blocks:
    ctypes.memset(block, 1, 1024)
last = libc.malloc(1024)
for block in blocks:
    libc.free(block)
before = rss_anon()
assert trim_malloc()
print(before, rss_anon())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_trimming_malloc_returns_freed_small_blocks_below_a_live_one():
    out = subprocess.run(
        [sys.executable, "-c", _SMALL_BLOCKS], capture_output=True, text=True, check=True
    )
    before, after = (int(x) for x in out.stdout.split())
    assert before - after > 10 * 1024


_COMMAND_RELEASES = """
import json, torch
from speechquant.core.cli.cuda_pages import is_cuda_library
from speechquant.core.cli.main import main

def cuda_rss_kb():
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                inside = len(head) > 5 and is_cuda_library(head[5])
            elif inside and head and head[0] == "Rss:":
                total += int(head[1])
    return total

before = cuda_rss_kb()
status = main(["history", "--limit", "1"])
print(json.dumps({"status": status, "before": before, "after": cuda_rss_kb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc only")
def test_the_command_releases_the_cuda_libraries_pages():
    import torch

    if torch.cuda.is_available() or torch.version.cuda is None:
        pytest.skip("CUDA is available or torch has no CUDA libraries: nothing to release")
    run = subprocess.run(
        [sys.executable, "-c", _COMMAND_RELEASES], capture_output=True, text=True, check=True
    )
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["status"] == 0
    assert out["before"] - out["after"] > 20 * 1024
