"""The command's process settings: triton never loads, glibc returns freed memory, CUDA pages go."""

from __future__ import annotations

import platform
import sys

import pytest

from .helpers import LIBC, SMAPS_RSS_KB, python_json, run_python

# Runs in a fresh interpreter: prints how much of an 8 MB block freed after glibc raised its
# dynamic mmap threshold (by freeing a 20 MB block) is still mapped, in KB.
_FREED_BLOCK = (
    LIBC
    + """
import sys
from speechquant.core.cli.process import fix_mmap_threshold

if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
libc.free(libc.malloc(20 << 20))
before = status_kb("VmSize")
block = libc.malloc(8 << 20)
ctypes.memset(block, 1, 8 << 20)
libc.free(block)
print(status_kb("VmSize") - before)
"""
)


def _still_mapped_kb(mode: str) -> int:
    return int(run_python(_FREED_BLOCK, mode).strip())


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
    assert run_python(code).strip() == "refused None"


def test_importing_the_cli_configures_nothing():
    code = "import sys\nimport speechquant.core.cli.main\nprint('triton' in sys.modules)\n"
    assert run_python(code).strip() == "False"


# Runs in a fresh interpreter: frees 20 MB of small blocks below a live one (so glibc cannot
# shrink its heap from the top by itself) and prints RssAnon in KB before and after the trim.
_SMALL_BLOCKS = (
    LIBC
    + """
from speechquant.core.cli.process import trim_malloc

blocks = [libc.malloc(1024) for _ in range(20480)]
for block in blocks:
    ctypes.memset(block, 1, 1024)
last = libc.malloc(1024)
for block in blocks:
    libc.free(block)
before = status_kb("RssAnon")
assert trim_malloc()
print(before, status_kb("RssAnon"))
"""
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_trimming_malloc_returns_freed_small_blocks_below_a_live_one():
    before, after = (int(x) for x in run_python(_SMALL_BLOCKS).split())
    assert before - after > 10 * 1024


_COMMAND_RELEASES = (
    SMAPS_RSS_KB
    + """
import json, torch
from speechquant.core.cli.cuda_pages import is_cuda_library
from speechquant.core.cli.main import main

before = smaps_rss_kb(is_cuda_library)
status = main(["history", "--limit", "1"])
print(json.dumps({"status": status, "before": before, "after": smaps_rss_kb(is_cuda_library)}))
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc only")
def test_the_command_releases_the_cuda_libraries_pages():
    import torch

    if torch.cuda.is_available() or torch.version.cuda is None:
        pytest.skip("CUDA is available or torch has no CUDA libraries: nothing to release")
    out = python_json(_COMMAND_RELEASES)
    assert out["status"] == 0
    assert out["before"] - out["after"] > 20 * 1024
