"""GUI test setup: offscreen Qt, Qt warnings fail tests, no QThread may outlive a test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QSettings

from speechquant.core.evaluation.history import HistoryStore
from speechquant.gui.worker import active_threads

HERE = Path(__file__).resolve().parent
# The offscreen platform plugin says this on every show(); it is not our warning.
QT_NOISE = r"This plugin does not support propagateSizeHints\(\)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.gui)
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(QT_NOISE))


@pytest.fixture(autouse=True)
def no_thread_left_running(qapp):
    """Fail the test if a worker thread it started is still running when it ends."""
    yield
    running = active_threads()
    for thread in running:
        thread.wait(60_000)  # let it end so the next test starts clean
    if running:
        names = ", ".join(thread.objectName() for thread in running)
        pytest.fail(f"the test left QThread(s) running: {names}")


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Runs set torch's thread count; give later tests the count they started with."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def gui_settings(tmp_path: Path) -> QSettings:
    """A private QSettings file: tests never touch the user's settings."""
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def history(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "history.sqlite")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 1-s 16 kHz clips with .txt references (a sidecar folder)."""
    folder = tmp_path_factory.mktemp("tiny-data")
    t = np.arange(16000) / 16000
    rng = np.random.default_rng(0)
    for i, text in enumerate(["hello world", "the cat sat", "open the door", "one two three"]):
        wave = 0.2 * np.sin(2 * np.pi * (180 + 40 * i) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"utt{i}.wav", wave.astype("float32"), 16000)
        (folder / f"utt{i}.txt").write_text(text + "\n")
    return folder


@pytest.fixture
def window(qtbot, tiny_model, gui_settings, history):
    """The main window on the tiny replica, errors kept out of dialogs."""
    from speechquant.gui.main_window import MainWindow

    win = MainWindow(settings=gui_settings, history=history, show_error_dialogs=False)
    qtbot.addWidget(win)
    win.set_model(tiny_model)
    yield win
    leftover = win.job is not None and win.job.running
    win.close()  # cancels and waits for a running job
    if leftover:
        pytest.fail("the test left the window's job running")
