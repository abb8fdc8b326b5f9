"""The Cluster setting reaches core's calls the way ``--cluster`` does (no Ray started here)."""

from __future__ import annotations

from contextlib import contextmanager

from speechquant.core.evaluation.executor import LocalExecutor
from speechquant.gui import jobs, search_action

from .helpers import fast_settings

RUN_TIMEOUT = 120_000


class RecordingExecutor(LocalExecutor):
    """Runs in this process and counts the sessions core sent it."""

    def __init__(self) -> None:
        self.sessions = 0

    def measure(self, runs, dataset, settings, progress=None, cancel=None):
        self.sessions += 1
        return super().measure(runs, dataset, settings, progress, cancel)


def _fake_cluster(monkeypatch, module):
    """Replace ``module.cluster_executor``; returns (settings seen, the executor handed out)."""
    seen: list = []
    executor = RecordingExecutor()

    @contextmanager
    def fake(settings, model, opener):
        seen.append(settings)
        yield None if settings is None else executor

    monkeypatch.setattr(module, "cluster_executor", fake)
    return seen, executor


def test_the_cluster_address_reaches_the_sensitivity_analysis(
    qtbot, window, tiny_data, monkeypatch
):
    seen, executor = _fake_cluster(monkeypatch, search_action)
    fast_settings(window, tiny_data, limit=2)
    window.settings_panel.cluster.setText("local:2")
    with qtbot.waitSignal(window.analyzer.sensitivityDone, timeout=RUN_TIMEOUT) as done:
        assert window.analyzer.run_sensitivity(("dynamic",))
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert [s.address for s in seen] == ["local:2"]
    assert executor.sessions == 1 + done.args[0].computed  # the baseline, then each plan


def test_the_benchmark_run_goes_through_the_cluster_only_when_one_is_set(
    qtbot, window, tiny_data, monkeypatch
):
    seen, executor = _fake_cluster(monkeypatch, jobs)
    fast_settings(window, tiny_data, limit=2)
    for address in ("", "auto"):
        window.settings_panel.cluster.setText(address)
        with qtbot.waitSignal(window.runCompleted, timeout=RUN_TIMEOUT):
            assert window.run_benchmark()
        qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert seen[0] is None and seen[1].address == "auto"
    assert executor.sessions == 1  # the float model of the second run (an empty plan)


def test_a_bad_cluster_address_is_one_line_and_remembered_setting(qtbot, window, gui_settings):
    panel = window.settings_panel
    panel.cluster.setText("localhost")
    with qtbot.waitSignal(window.analyzer.failed) as failed:
        assert not window.analyzer.run_sensitivity(("dynamic",))
    assert "unknown cluster address 'localhost'" in failed.args[0]
    panel.cluster.setText("ray://head.example:10001")
    panel.save()
    from speechquant.gui.settings_panel import SettingsPanel

    again = SettingsPanel(gui_settings)
    qtbot.addWidget(again)
    assert again.cluster_settings().address == "ray://head.example:10001"
