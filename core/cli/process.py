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

And two things are held after they stop being used. torch's CUDA libraries keep the pages
their loading read (about 150 MB) although a CPU-only process never runs them again, and
Python's garbage and glibc's free heap pages from reading a model stay in the process.
:func:`release_unused_memory` unmaps the first (:mod:`speechquant.core.cli.cuda_pages`, not when
CUDA is available) and returns the second; the command calls it once its modules are imported
and again once the model is open.

Only the command does this (:func:`configure_process`, first thing in ``main``, and
:func:`release_unused_memory`); importing speechquant as a library changes nothing.
"""

from __future__ import annotations

import ctypes
import gc
import platform
import sys

from speechquant.core.cli.cuda_pages import ReleasedPages, release_cuda_pages

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


def trim_malloc() -> bool:
    """Return glibc malloc's free heap pages to the system; False where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    ctypes.CDLL(None).malloc_trim(0)
    return True


def release_unused_memory() -> ReleasedPages:
    """Collect garbage, trim malloc's heaps and release the CUDA libraries' pages (see above)."""
    gc.collect()
    trim_malloc()
    return release_cuda_pages()


def configure_process() -> None:
    """Both settings above, for the ``speechquant`` command's own process."""
    keep_triton_unloaded()
    fix_mmap_threshold()
