"""Process-wide settings of the ``speechquant`` command: a CPU-only process that returns memory.

Two things cost the command's peak memory without doing anything for it:

- torch's CUDA wheels bring triton, the GPU kernel compiler. transformers imports
  ``torch._dynamo`` when it loads any model class, and ``torch._dynamo`` imports triton when it
  is installed: about 50 MB resident (``libtriton.so`` alone is 47 MB). speechquant runs on the
  CPU, where torch never needs triton (its CPU compiler generates C++), so the command marks
  triton as not importable before anything asks for it.
- glibc's malloc raises its mmap threshold (up to 32 MB) every time a large block is freed, so
  after the first large frees it serves later blocks of up to that size from its heaps, which
  keep freed memory: over a transcription run that is 75-100 MB of freed activations never
  returned. A fixed threshold of 128 KB (glibc's initial one) keeps large blocks in their own
  mappings, returned to the system on free.

Only the command sets these (:func:`configure_process`, first thing in ``main``); importing
speechquant as a library changes neither.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: Blocks at least this large get their own mapping (glibc's initial threshold, kept fixed).
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def keep_triton_unloaded() -> bool:
    """Make ``import triton`` fail in this process; False if it was already imported."""
    if sys.modules.get("triton") is not None:
        return False
    sys.modules["triton"] = None  # type: ignore[assignment]
    return True


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc malloc's mmap threshold; False where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))


def configure_process() -> None:
    """Both settings above, for the ``speechquant`` command's own process."""
    keep_triton_unloaded()
    fix_mmap_threshold()
