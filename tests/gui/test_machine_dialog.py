"""Help ▸ About this machine: the doctor's report in the GUI."""

from __future__ import annotations

from speechquant.core.evaluation import doctor
from speechquant.core.evaluation.doctor import SchemeSpeed
from speechquant.gui.machine_dialog import MachineDialog


def fake_measure(**kwargs):
    return [SchemeSpeed("bf16", None, 0.4, (0.35, 0.45), {"shape": 0.4})], 3


def test_dialog_describes_the_machine_then_measures_through_the_job_slot(
    qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    monkeypatch.setattr(doctor, "measure_schemes", fake_measure)
    started = []

    def start_job(fn, on_result):
        started.append(fn)
        on_result(fn(None, None))
        return True

    dialog = MachineDialog(start_job)
    qtbot.addWidget(dialog)
    assert "No measurement on this machine yet" in dialog.note.text()
    assert "CPU" in dialog.text.toPlainText() and "torch" in dialog.text.toPlainText()
    dialog.measure.click()
    assert len(started) == 1
    assert "bf16" in dialog.text.toPlainText()
    assert "slower here (2.5x slower)" in dialog.text.toPlainText()
    again = MachineDialog(start_job)  # the report is cached now
    qtbot.addWidget(again)
    assert again.note.text().startswith("Measured ")


def test_a_busy_job_slot_is_said_not_ignored(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    dialog = MachineDialog(lambda fn, on_result: False)
    qtbot.addWidget(dialog)
    dialog.measure.click()
    assert "Another job is running" in dialog.note.text()
    assert dialog.measure.isEnabled()


def test_help_menu_measures_through_the_window_job_slot(qtbot, tmp_path, monkeypatch, gui_settings):
    from speechquant.gui.machine_dialog import slot_starter
    from speechquant.gui.main_window import MainWindow

    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    monkeypatch.setattr(doctor, "measure_schemes", fake_measure)
    window = MainWindow(settings=gui_settings, show_error_dialogs=False)
    qtbot.addWidget(window)
    menus = [a.text() for a in window.menuBar().actions()]
    assert "&Help" in menus
    got = []
    start = slot_starter(window.slot)
    with qtbot.waitSignal(window.slot.finished, timeout=30_000):
        assert start(lambda progress, cancel: doctor.run_doctor(refresh=True), got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10_000)
    assert got[0].speeds[0].scheme == "bf16"


def test_auto_preset_in_the_gui_needs_a_measurement_then_uses_it(
    qtbot, tmp_path, monkeypatch, gui_settings, tiny_model
):
    from speechquant.gui.main_window import MainWindow

    monkeypatch.setenv("SPEECHQUANT_CACHE", str(tmp_path))
    window = MainWindow(settings=gui_settings, show_error_dialogs=False)
    qtbot.addWidget(window)
    window.set_model(tiny_model)
    errors = []
    window.plan_editor.failed.connect(errors.append)
    assert not window.plan_editor.apply_preset("auto")
    assert "Help > About this machine" in errors[-1]
    monkeypatch.setattr(doctor, "measure_schemes", fake_measure_fast_dynamic)
    doctor.run_doctor(refresh=True)
    assert window.plan_editor.apply_preset("auto")
    plan = window.tree_model.plan
    assert set(plan.entries.values()) == {"dynamic"} and plan.settings.engine == "onednn"


def fake_measure_fast_dynamic(**kwargs):
    return [SchemeSpeed("dynamic", "onednn", 1.8, (1.4, 2.1), {"shape": 1.8})], 3
