"""The command's process settings: triton never loads, and glibc returns freed large blocks."""

from __future__ import annotations

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
