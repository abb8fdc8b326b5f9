"""Handing back the resident pages of the CUDA libraries in a process that runs on the CPU.

PyPI's torch is its CUDA build: ``import torch`` maps libtorch_cuda, cuBLAS, cuDNN, NCCL and the
other NVIDIA libraries, and loading them (symbol lookup, relocation, the static constructors
that register CUDA operators) brings on the order of 150 MB of their pages into the process. A
process without a usable GPU never runs that code again, yet those pages stay resident (counted
in its RSS) until it exits.

:func:`release_cuda_pages` unmaps them from the process with ``madvise(MADV_DONTNEED)``, and
only pages that are still the file's own: clean page-cache pages (``/proc/self/pagemap``) of
mappings that cannot be written. Pages the dynamic loader changed (relocated data) are private
copies and are left alone, so nothing the libraries hold is lost. A page used again later is
mapped again from the page cache on its next access (a minor fault, no disk read): results do
not change, only what the process holds resident. Nothing is done when CUDA is available.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: File names of the CUDA driver's, toolkit's, cuDNN's, NCCL's and torch's own CUDA libraries.
CUDA_LIBRARY = re.compile(
    r"^lib(?:torch_cuda|c10_cuda|torch_nvshmem|caffe2_nvrtc|cuda|cudnn|cublas|cufft|curand"
    r"|cusolver|cusparse|cupti|cufile|nccl|nvrtc|nvJitLink|nvshmem|nvToolsExt|nvperf)[^/]*\.so"
)
MADV_DONTNEED = 4  # sys/mman.h
_PRESENT = 1 << 63  # /proc/PID/pagemap bits (Documentation/admin-guide/mm/pagemap.rst)
_FILE_PAGE = 1 << 61


@dataclass(frozen=True)
class Mapping:
    """One line of ``/proc/self/maps``."""

    start: int
    end: int
    perms: str
    path: str


@dataclass(frozen=True)
class ReleasedPages:
    """What :func:`release_cuda_pages` did: pages unmapped, or why it did nothing."""

    libraries: int = 0
    pages: int = 0
    page_size: int = 4096
    failed_ranges: int = 0
    skipped: str | None = None

    @property
    def megabytes(self) -> float:
        """The unmapped pages in MB (2**20 bytes)."""
        return self.pages * self.page_size / 2**20


def is_cuda_library(path: str) -> bool:
    """True for a shared library of CUDA (driver, toolkit, NVIDIA wheels, torch's CUDA part)."""
    name = os.path.basename(path)
    return ("/nvidia/" in path and ".so" in name) or CUDA_LIBRARY.match(name) is not None


def read_mappings(maps_text: str) -> list[Mapping]:
    """The mappings of a ``/proc/PID/maps`` text."""
    mappings = []
    for line in maps_text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        mappings.append(Mapping(start, end, fields[1], fields[5] if len(fields) > 5 else ""))
    return mappings


def releasable(mappings: list[Mapping], wanted: Callable[[str], bool]) -> list[Mapping]:
    """The private, unwritable file mappings whose file ``wanted`` accepts."""
    return [
        m
        for m in mappings
        if m.path.startswith("/")
        and "w" not in m.perms
        and m.perms.endswith("p")
        and wanted(m.path)
    ]


def file_page_runs(pagemap: int, mapping: Mapping, page_size: int) -> list[tuple[int, int]]:
    """Address ranges of ``mapping`` whose pages are resident and still the file's own.

    ``pagemap`` is an open descriptor of ``/proc/self/pagemap``. A page the process wrote to
    (its private copy, such as relocated data) is anonymous, so it is in no range.
    """
    offset = mapping.start // page_size * 8
    chunks, wanted = [], (mapping.end - mapping.start) // page_size * 8
    while wanted:
        chunk = os.pread(pagemap, wanted, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset, wanted = offset + len(chunk), wanted - len(chunk)
    entries = np.frombuffer(b"".join(chunks), dtype="<u8")
    mask = np.uint64(_PRESENT | _FILE_PAGE)
    keep = ((entries & mask) == mask).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], keep, [0]))))
    return [
        (mapping.start + int(a) * page_size, mapping.start + int(b) * page_size)
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


def release_file_pages(wanted: Callable[[str], bool]) -> ReleasedPages:
    """Unmap the clean resident pages of this process's unwritable mappings of ``wanted`` files."""
    if not sys.platform.startswith("linux"):
        return ReleasedPages(skipped="not Linux (no /proc/self/pagemap)")
    page_size = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        targets = releasable(read_mappings(maps.read()), wanted)
    if not targets:
        return ReleasedPages(page_size=page_size, skipped="no such library is mapped")
    try:
        pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
    except OSError as exc:
        return ReleasedPages(page_size=page_size, skipped=f"/proc/self/pagemap: {exc.strerror}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.madvise.restype = ctypes.c_int
    pages = failed = 0
    try:
        for mapping in targets:
            for start, end in file_page_runs(pagemap, mapping, page_size):
                if libc.madvise(start, end - start, MADV_DONTNEED) == 0:
                    pages += (end - start) // page_size
                else:
                    failed += 1
    finally:
        os.close(pagemap)
    return ReleasedPages(
        libraries=len({m.path for m in targets}),
        pages=pages,
        page_size=page_size,
        failed_ranges=failed,
    )


def release_cuda_pages() -> ReleasedPages:
    """Unmap the resident clean pages of the CUDA libraries when torch has no usable GPU.

    Does nothing before torch is imported (its CUDA libraries are not loaded then) or when
    ``torch.cuda.is_available()``; the result says which.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return ReleasedPages(skipped="torch is not imported")
    if torch.cuda.is_available():
        return ReleasedPages(skipped="CUDA is available")
    return release_file_pages(is_cuda_library)
