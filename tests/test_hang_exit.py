"""The project's pytest settings end a run whose test deadlocks with the GIL held."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

HANGING = """
import ctypes


def test_holds_the_gil():
    ctypes.PyDLL(None).sleep(120)  # libc's sleep called with the GIL held: no Python thread runs
"""


def test_a_test_that_holds_the_gil_ends_the_run_with_every_stack(tmp_path: Path) -> None:
    test_file = tmp_path / "test_hanging.py"
    test_file.write_text(HANGING)
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path),
        "-o", "timeout=1", "-o", "faulthandler_timeout=3", str(test_file),
    ]  # fmt: skip
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError("the hanging test was still running after 60 s") from None
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert elapsed < 30
    assert "Timeout (0:00:03)!" in done.stderr
    assert "in test_holds_the_gil" in done.stderr
