"""Releasing the CUDA libraries' resident pages: clean file pages go, written copies stay."""

from __future__ import annotations

import ctypes
import mmap
import sys
from pathlib import Path

import pytest

from speechquant.core.cli import cuda_pages
from speechquant.core.cli.cuda_pages import (
    is_cuda_library,
    read_mappings,
    releasable,
    release_cuda_pages,
    release_file_pages,
)

from .helpers import SMAPS_RSS_KB, python_json, smaps_rss_kb

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc only")
PAGES = 64


def _rss_kb(path: Path) -> int:
    """Resident KB of this process's mappings of ``path`` (from /proc/self/smaps)."""
    return smaps_rss_kb(lambda name: name == str(path))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "nvidia" / "cublas" / "lib" / "libcublasFake.so.13"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(range(256)) * (PAGES * mmap.PAGESIZE // 256))
    return path


def test_cuda_libraries_are_recognised_by_name_and_folder():
    site = "/venv/lib/python3.11/site-packages"
    for path in (
        f"{site}/torch/lib/libtorch_cuda.so",
        f"{site}/torch/lib/libc10_cuda.so",
        f"{site}/nvidia/cu13/lib/libcublasLt.so.13",
        f"{site}/nvidia/nccl/lib/libnccl.so.2",
        f"{site}/nvidia/cudnn/lib/libcudnn.so.9",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
    ):
        assert is_cuda_library(path), path
    for path in (
        f"{site}/torch/lib/libtorch_cpu.so",
        f"{site}/torch/lib/libc10.so",
        "/usr/lib/x86_64-linux-gnu/libcurl.so.4",
        f"{site}/numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so",
    ):
        assert not is_cuda_library(path), path


def test_only_private_unwritable_file_mappings_are_candidates():
    text = (
        "7f0000000000-7f0000001000 r--p 00000000 08:01 1 /lib/libcudart.so.13\n"
        "7f0000001000-7f0000003000 r-xp 00001000 08:01 1 /lib/libcudart.so.13\n"
        "7f0000003000-7f0000004000 rw-p 00003000 08:01 1 /lib/libcudart.so.13\n"
        "7f0000004000-7f0000005000 r--s 00000000 08:01 2 /lib/libcudart.so.13\n"
        "7f0000005000-7f0000006000 r-xp 00000000 08:01 3 /lib/libc.so.6\n"
        "7f0000006000-7f0000007000 rw-p 00000000 00:00 0\n"
    )
    found = releasable(read_mappings(text), is_cuda_library)
    assert [(m.start, m.perms) for m in found] == [
        (0x7F0000000000, "r--p"),
        (0x7F0000001000, "r-xp"),
    ]


@linux_only
def test_clean_pages_of_a_read_only_mapping_are_released_and_read_back(library: Path):
    with library.open("rb") as file:
        view = mmap.mmap(file.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    try:
        before = bytes(view)  # every page resident
        assert _rss_kb(library) >= PAGES * mmap.PAGESIZE // 1024
        result = release_file_pages(lambda path: path == str(library))
        assert result.skipped is None
        assert result.pages == PAGES and result.failed_ranges == 0
        assert _rss_kb(library) == 0
        assert bytes(view) == before  # read again from the page cache
    finally:
        view.close()


@linux_only
def test_a_written_private_page_is_kept(library: Path):
    """A private copy (as the loader's relocations make) must survive: only file pages go."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    c_int = ctypes.c_int
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, c_int, c_int, c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = PAGES * mmap.PAGESIZE
    with library.open("rb") as file:
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        address = libc.mmap(None, size, prot, mmap.MAP_PRIVATE, file.fileno(), 0)
    assert address not in (None, ctypes.c_void_p(-1).value)
    try:
        pages = (ctypes.c_ubyte * size).from_address(address)
        assert sum(pages[i * mmap.PAGESIZE] for i in range(PAGES)) == 0  # all resident
        pages[5 * mmap.PAGESIZE] = 0xAB  # this page becomes the process's own copy
        assert libc.mprotect(address, size, mmap.PROT_READ) == 0
        result = release_file_pages(lambda path: path == str(library))
        assert result.pages == PAGES - 1
        assert _rss_kb(library) == mmap.PAGESIZE // 1024
        assert pages[5 * mmap.PAGESIZE] == 0xAB
        assert pages[6 * mmap.PAGESIZE] == 0
    finally:
        libc.munmap(address, size)


def test_nothing_is_released_when_cuda_is_available(monkeypatch: pytest.MonkeyPatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    called = []
    monkeypatch.setattr(cuda_pages, "release_file_pages", lambda wanted: called.append(wanted))
    assert release_cuda_pages().skipped == "CUDA is available"
    assert called == []


_AFTER_IMPORT = (
    SMAPS_RSS_KB
    + """
import json, torch
from speechquant.core.cli.cuda_pages import is_cuda_library, release_cuda_pages

before = smaps_rss_kb(is_cuda_library)
result = release_cuda_pages()
after = smaps_rss_kb(is_cuda_library)
product = (torch.arange(12.0).reshape(3, 4) @ torch.ones(4, 2)).tolist()
print(json.dumps({"before": before, "after": after, "skipped": result.skipped,
                  "released_mb": result.megabytes, "product": product}))
"""
)


@linux_only
def test_torch_cuda_libraries_pages_are_released_and_torch_still_works():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the pages are kept")
    if torch.version.cuda is None:
        pytest.skip("a CPU-only torch build: no CUDA libraries to release")
    out = python_json(_AFTER_IMPORT)
    assert out["skipped"] is None
    assert out["before"] - out["after"] > 20 * 1024  # tens of MB of CUDA pages gone
    assert out["released_mb"] * 1024 >= out["before"] - out["after"]
    assert out["product"] == [[6.0, 6.0], [22.0, 22.0], [38.0, 38.0]]
