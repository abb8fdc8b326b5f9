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
