"""One job slot for the window: the microphone and the benchmarks never run at once."""

from __future__ import annotations

import numpy as np

from speechquant.core.live.file_source import ArraySource

from .helpers import fast_settings
from .test_microphone_tab import RATE, WAIT, choose_test_input, stream

RUN_TIMEOUT = 300_000


def test_a_benchmark_cannot_start_while_the_microphone_transcribes(qtbot, window, tiny_data):
    fast_settings(window, tiny_data, limit=1)
    tab = window.microphone
    long_take = np.tile(stream(), 8)  # paced like a microphone: runs for a while
    tab.source_factory = lambda device, rate: ArraySource(long_take, RATE, realtime=True)
    choose_test_input(tab)
    with qtbot.waitSignal(tab.recordingStarted, timeout=WAIT):
        assert tab.start_recording()
    assert window.slot.busy and window.slot.name == "live"
    assert not window.run_benchmark()
    assert not window.analyzer.run_sensitivity(("dynamic",))
    assert not window.exporter.export_to(tiny_data.parent / "never")
    assert "a job is running (live transcription)" in window.run_panel.log.toPlainText()
    assert not window.run_panel.run_button.isEnabled()
    with qtbot.waitSignal(tab.idle, timeout=WAIT):
        tab.stop_recording()
    qtbot.waitUntil(lambda: not window.slot.busy, timeout=WAIT)
    assert window.run_panel.run_button.isEnabled()  # and the slot is free again
    with qtbot.waitSignal(window.runCompleted, timeout=RUN_TIMEOUT):
        assert window.run_benchmark()
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)


def test_the_microphone_cannot_start_while_a_benchmark_runs(qtbot, window, tiny_data):
    fast_settings(window, tiny_data, limit=4)
    window.settings_panel.repeats.setValue(50)  # long enough to try the microphone meanwhile
    tab = window.microphone
    tab.source_factory = lambda device, rate: ArraySource(stream(), RATE)
    choose_test_input(tab)
    with qtbot.waitSignal(window.jobFinished, timeout=RUN_TIMEOUT):
        assert window.run_benchmark()
        assert not tab.record_button.isEnabled()
        assert not tab.start_recording()
        assert "is running" in tab.status.text() and not tab.capturing
        window.cancel_job()
    assert not window.slot.busy and tab.record_button.isEnabled()


def test_cancel_says_what_was_kept_and_refreshes_the_table(qtbot, window, tiny_data):
    fast_settings(window, tiny_data, limit=3)
    assert window.apply_preset("all-dynamic")

    def cancel_in_the_plan(done: int, total: int, stage: str) -> None:
        if stage.startswith("benchmarking float vs all-dynamic"):  # the baseline is stored by now
            window.cancel_job()

    window.jobProgress.connect(cancel_in_the_plan)
    with qtbot.waitSignal(window.jobFinished, timeout=RUN_TIMEOUT):
        assert window.run_benchmark()
    log = window.run_panel.log.toPlainText()
    assert "run cancelled; kept the float baseline #" in log
    assert "nothing was recorded" not in log
    assert window.results.model.rowCount() == 1  # the stored baseline is shown at once
