"""Run by test_real_window under Xvfb: the main window on the xcb platform, then a screen grab.

Usage: python real_window_main.py SOURCE OUT.png. Prints the platform name, exits 0 once the
model is loaded and the whole X screen (not the widget) has been saved.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main(source: str, out: Path) -> int:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from speechquant.gui.main_window import MainWindow

    app = QApplication([sys.argv[0]])
    print(f"platform={app.platformName()}", flush=True)
    loop = QEventLoop()
    outcome = {"code": 1}
    with tempfile.TemporaryDirectory(prefix="speechquant-xcb-") as tmp:
        settings = QSettings(str(Path(tmp) / "gui.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, show_error_dialogs=False)
        window.resize(1280, 800)
        window.move(0, 0)

        def grab_screen() -> None:
            screen = QGuiApplication.primaryScreen()
            if screen.grabWindow(0).save(str(out), "PNG"):
                outcome["code"] = 0
            loop.quit()

        def finished() -> None:
            if window.model is not None:
                QTimer.singleShot(1500, grab_screen)  # let the window manager-less X draw it

        def failed(text: str) -> None:
            print(f"error: {text}", file=sys.stderr)
            loop.quit()

        window.jobFinished.connect(finished)
        window.jobFailed.connect(failed)
        window.show()
        window.open_source(source)
        QTimer.singleShot(120_000, loop.quit)
        loop.exec()
        window.close()
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
