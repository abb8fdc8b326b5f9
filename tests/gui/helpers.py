"""Helpers shared by the GUI tests."""

from __future__ import annotations

from pathlib import Path


def fast_settings(win, data: Path, limit: int = 3) -> None:
    """Small, quick benchmark settings for the tiny replica."""
    panel = win.settings_panel
    panel.dataset.setText(str(data))
    panel.limit.setValue(limit)
    panel.warmup.setValue(0)
    panel.repeats.setValue(1)
    panel.threads.setValue(1)
    panel.calib_n.setValue(1)
    panel.calib.setText("")
    panel.encoder_rtf.setChecked(False)
