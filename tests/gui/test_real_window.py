"""The desktop app in a real X window (Qt's xcb platform under Xvfb), not the offscreen plugin.

This catches what offscreen rendering cannot: missing xcb libraries, a window that never maps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None, reason="Xvfb is not installed (apt-get install xvfb)"
)


@pytest.fixture
def xvfb_display():
    """A private Xvfb server; yields its DISPLAY value."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    try:
        assert number, "Xvfb did not report a display number"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def test_main_window_opens_a_model_in_a_real_x_window(xvfb_display, tmp_path):
    out = tmp_path / "screen.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(DISPLAY=xvfb_display, QT_QPA_PLATFORM="xcb", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, str(HERE / "real_window_main.py"), "replica:wav2vec2-tiny", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "platform=xcb" in done.stdout
    import matplotlib.image as mpimg

    pixels = mpimg.imread(out)
    assert pixels.shape[:2] == (800, 1280)
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    # A blank screen is one colour; the window's widgets and text give hundreds.
    assert len(colours) > 50, f"the screen looks blank ({len(colours)} colours)"
    # Xvfb's empty root is black: most of the 1280x800 window area must be painted.
    assert (rgb.sum(axis=1) > 0).mean() > 0.5
