"""``speechquant-gui [SOURCE] [--screenshot out.png]``: the desktop app's entry point."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

SIZE = (1400, 900)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechquant-gui",
        description=(
            "The speechquant desktop app: open a SpeechBrain ASR model, choose a quantization "
            "scheme per module, and compare WER and speed against the float model."
        ),
    )
    parser.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="model to open: a built-in (e.g. replica:wav2vec2-tiny), a local SpeechBrain or "
        "export folder, or a Hugging Face id",
    )
    parser.add_argument(
        "--screenshot",
        metavar="PNG",
        type=Path,
        help="load SOURCE, render the main window offscreen, save it as PNG and exit",
    )
    return parser


def _application() -> QApplication:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "speechquant-gui"])
    assert isinstance(app, QApplication)
    app.setApplicationName("speechquant-gui")
    app.setOrganizationName("speechquant")
    return app


def _screenshot(source: str, out: Path) -> int:
    """Open ``source`` in a window with throw-away settings, grab it once loaded, save ``out``."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from .main_window import MainWindow

    _application()
    loop = QEventLoop()  # a local loop: the application itself is never told to quit
    outcome = {"code": 1}
    with tempfile.TemporaryDirectory(prefix="speechquant-gui-") as tmp:
        settings = QSettings(str(Path(tmp) / "gui.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, show_error_dialogs=False)
        window.resize(*SIZE)

        def failed(text: str) -> None:
            print(f"error: {text}", file=sys.stderr)
            QTimer.singleShot(0, loop.quit)

        def finished() -> None:
            if window.model is None:
                return
            out.parent.mkdir(parents=True, exist_ok=True)
            if window.grab().save(str(out), "PNG"):
                outcome["code"] = 0
                print(out)
            else:
                print(f"error: cannot write {out}", file=sys.stderr)
            loop.quit()

        window.jobFailed.connect(failed)
        window.jobFinished.connect(finished)
        window.show()
        window.open_source(source)
        loop.exec()
        window.close()
        window.deleteLater()
    return outcome["code"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.screenshot is not None:
        if not args.source:
            print("error: --screenshot needs a SOURCE to load", file=sys.stderr)
            return 2
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return _screenshot(args.source, args.screenshot)

    from .main_window import MainWindow
    from .preload import start_preimport

    app = _application()
    window = MainWindow()
    window.show()
    start_preimport()  # the first model load then skips the speechbrain/transformers imports
    if args.source:
        window.open_source(args.source)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
