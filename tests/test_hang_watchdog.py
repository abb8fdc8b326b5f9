"""The hang watchdog ends a run whose test deadlocks with the GIL held, and names the test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

HANGING = """
import ctypes


def test_holds_the_gil_forever():
    ctypes.PyDLL(None).sleep(120)  # libc sleep called with the GIL held: no Python thread runs
"""


def test_a_test_that_holds_the_gil_ends_the_run_with_its_stack(tmp_path: Path) -> None:
    test_file = tmp_path / "test_hanging.py"
    test_file.write_text(HANGING)
    env = {**os.environ, "SPEECHQUANT_TEST_HANG_EXIT_S": "3"}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.hang_watchdog",
            "-o",
            "timeout=1",
            str(test_file),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert elapsed < 60, f"the run went on for {elapsed:.0f} s"
    assert "Timeout (0:00:03)!" in done.stderr
    assert "test_holds_the_gil_forever" in done.stderr
