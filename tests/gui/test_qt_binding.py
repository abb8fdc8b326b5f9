"""The Qt binding the lock installs survives what the app does all day: bool signals.

PySide6 6.12.0 released True/False once too often on every bool signal delivered to a Python
slot, so a long session (or the test suite) aborted with "bool_dealloc". The lock pins 6.11.
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QPushButton
app = QApplication([])
class Slot(QObject):
    busy = Signal(bool)
slot = Slot(); button = QPushButton(); seen = []
slot.busy.connect(button.setEnabled)
slot.busy.connect(lambda value: seen.append(value))
before = sys.getrefcount(True)
for _ in range(20000):
    slot.busy.emit(True)
    slot.busy.emit(False)
seen.clear()
print("refcount drift", sys.getrefcount(True) - before)
"""


def test_bool_signals_keep_true_and_false_alive():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-500:]
    drift = int(done.stdout.split()[-1])
    assert abs(drift) < 100, f"True's refcount drifted by {drift}"
