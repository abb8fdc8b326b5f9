"""Render the README screenshots: ``python -m speechquant.gui.screenshots OUTDIR``.

Writes ``main-window.png`` (Whisper tiny.en with the tutorial plan), ``results.png`` (the results
tab after two runs), ``utterances.png`` (transcripts of the float model and a quantized plan),
``microphone.png`` (the Microphone tab transcribing a speech file, float and quantized side by
side) and ``sensitivity.png`` (the Sensitivity tab after a sensitivity run and Suggest plan).
The runs use a throw-away history and settings, so the user's own are never touched. Results
and utterances come from the real Whisper tiny.en (``demo:whisper-tiny-en``) on the shared
speech set when it is present (else the built-in ``demo`` speech); the sensitivity shot uses
``--sensitivity-source`` (the fast tiny replica by default: a Whisper analysis takes far longer
than the few minutes this script aims for). Offscreen by default; set ``QT_QPA_PLATFORM=xcb``
under Xvfb for a real window.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

SIZE = (1400, 900)
SHOTS = ("main-window", "results", "microphone", "sensitivity")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m speechquant.gui.screenshots",
        description="Render the GUI screenshots for the docs (offscreen).",
    )
    parser.add_argument("outdir", type=Path, help="folder for the PNG files")
    parser.add_argument(
        "--results-source",
        default="demo:whisper-tiny-en",
        help="model for the results and utterance screenshots (default: %(default)s)",
    )
    parser.add_argument(
        "--sensitivity-source",
        default="replica:wav2vec2-tiny",
        help="model for the sensitivity screenshot (default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="DATA for the runs (default: the shared speech set's manifest, else demo)",
    )
    parser.add_argument("--limit", type=int, default=4, help="utterances per run (default: 4)")
    parser.add_argument(
        "--sensitivity-schemes",
        nargs="+",
        default=["dynamic", "bf16"],
        help="schemes of the sensitivity screenshot (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SHOTS,
        default=list(SHOTS),
        help="render only these screenshots (default: all)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds each job may take before the script stops with an error (default: %(default)s)",
    )
    return parser


class Shooter:
    """Drives one MainWindow through the steps, waiting on its signals."""

    def __init__(self, workdir: Path, timeout_s: float = 900.0) -> None:
        from PySide6.QtCore import QSettings

        from speechquant.core.evaluation.history import HistoryStore

        from .app import _application
        from .main_window import MainWindow

        self.app = _application()
        settings = QSettings(str(workdir / "gui.ini"), QSettings.Format.IniFormat)
        history = HistoryStore(workdir / "history.sqlite")
        self.window = MainWindow(settings=settings, history=history, show_error_dialogs=False)
        self.window.resize(*SIZE)
        self.window.show()
        self.errors: list[str] = []
        self.window.jobFailed.connect(self.errors.append)
        self.timeout_s = timeout_s

    def wait_job(self) -> None:
        """Wait for the running job; stop with an error when it fails or outlasts the timeout."""
        from PySide6.QtCore import QEventLoop, QTimer

        if self.window.job is None:
            return
        loop = QEventLoop()
        self.window.jobFinished.connect(loop.quit)
        QTimer.singleShot(int(self.timeout_s * 1000), loop.quit)
        loop.exec()
        self.window.jobFinished.disconnect(loop.quit)
        if self.errors:
            raise SystemExit(f"error: {self.errors[-1]}")
        if self.window.job is not None:
            self.window.cancel_job()
            raise SystemExit(
                f"error: a job outlasted {self.timeout_s:.0f} s; pass a larger --timeout or a smaller --limit"
            )

    def settle(self) -> None:
        for _ in range(5):
            self.app.processEvents()

    def open(self, source: str) -> None:
        self.window.open_source(source)
        self.wait_job()

    def run(self, preset: str) -> None:
        if not self.window.apply_preset(preset):
            raise SystemExit(f"error: preset {preset} does not fit {self.window.model.source}")  # type: ignore[union-attr]
        self.window.run_benchmark()
        self.wait_job()

    def save(self, path: Path) -> None:
        self.settle()
        if not self.window.grab().save(str(path), "PNG"):
            raise SystemExit(f"error: cannot write {path}")
        print(path)


WHISPER_LAYERS = "whisper.model.encoder.layers"


def default_data() -> str:
    from speechquant.core.paths import shared_speech_dir

    found = shared_speech_dir()
    return str(found / "manifest.csv") if found is not None else "demo"


def main_window_shot(shot: Shooter, source: str, out: Path) -> None:
    """The model with the tutorial plan, its first encoder layer expanded."""
    window = shot.window
    shot.open(source)
    window.apply_preset("tutorial")
    view, proxy, model = window.plan_panel.view, window.plan_panel.proxy, window.tree_model
    view.collapseAll()
    tree = model.tree
    paths = ["whisper", "whisper.model", "whisper.model.encoder", WHISPER_LAYERS,
             WHISPER_LAYERS + ".0"]  # fmt: skip
    for path in paths:
        if tree is not None and path in tree:
            view.expand(proxy.mapFromSource(model.index_of(path)))
    window.tabs.setCurrentIndex(0)
    shot.save(out)


def microphone_shot(shot: Shooter, data: str, out: Path) -> None:
    """The Microphone tab fed a speech file (no microphone needed), both transcripts shown."""
    from PySide6.QtCore import QEventLoop, QTimer

    from speechquant.core.data.datasets import open_dataset

    window = shot.window
    tab = window.microphone
    window.apply_preset("all-dynamic")
    window.tabs.setCurrentWidget(tab)
    shot.settle()
    wav = next(iter(open_dataset(data, limit=2))).audio_path
    tab.use_file(str(wav))
    loop = QEventLoop()
    tab.idle.connect(loop.quit)
    QTimer.singleShot(300_000, loop.quit)
    if tab.start_recording():
        loop.exec()
    tab.idle.disconnect(loop.quit)
    shot.save(out)


def results_shots(shot: Shooter, source: str, data: str, limit: int, outdir: Path) -> None:
    """Two plans (each with the cached float baseline), then the results and utterance tabs."""
    window = shot.window
    panel = window.settings_panel
    panel.dataset.setText(data)
    panel.limit.setValue(limit)
    panel.repeats.setValue(1)
    panel.encoder_rtf.setChecked(True)
    if window.model is None or window.model.source != source:
        shot.open(source)
    for preset in ("all-dynamic", "bf16"):
        shot.run(preset)
    results = window.results
    window.tabs.setCurrentIndex(1)
    rows = [row for row in results.model.rows if row.run.plan_name == "all-dynamic"]
    if rows:
        results.select_ids([rows[0].run.id])
    shot.save(outdir / "results.png")
    if rows and rows[0].baseline is not None:
        window.utterances.load_runs(source, rows[0].baseline.id, rows[0].run.id)
    window.tabs.setCurrentIndex(2)
    shot.save(outdir / "utterances.png")


def sensitivity_shot(
    shot: Shooter, source: str, schemes: tuple[str, ...], data: str, limit: int, out: Path
) -> None:
    """Sensitivity on ``schemes`` and a size-within-budget plan search on ``data``, the tab shown."""
    from .search_action import SuggestChoice

    window = shot.window
    window.settings_panel.dataset.setText(data)
    window.settings_panel.limit.setValue(max(limit, 6))
    window.settings_panel.calib_n.setValue(1)
    if window.model is None or window.model.source != source:
        shot.open(source)
    analyzer = window.analyzer
    if not analyzer.run_sensitivity(schemes):
        raise SystemExit(
            f"error: {shot.errors[-1] if shot.errors else 'sensitivity did not start'}"
        )
    shot.wait_job()
    choice = SuggestChoice(
        max_wer_increase=5.0, objective="size", schemes=schemes, search_n=3, max_evals=12
    )
    analyzer.suggest(choice)
    shot.wait_job()
    window.tabs.setCurrentWidget(analyzer.view)
    shot.save(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    args.outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="speechquant-shots-") as tmp:
        shot = Shooter(Path(tmp), args.timeout)
        data = args.data or default_data()
        try:
            if "main-window" in args.only:
                main_window_shot(shot, args.results_source, args.outdir / "main-window.png")
            if "results" in args.only:
                results_shots(shot, args.results_source, data, args.limit, args.outdir)
            if "microphone" in args.only:
                microphone_shot(shot, data, args.outdir / "microphone.png")
            if "sensitivity" in args.only:
                schemes = tuple(args.sensitivity_schemes)
                out = args.outdir / "sensitivity.png"
                sensitivity_shot(shot, args.sensitivity_source, schemes, data, args.limit, out)
        finally:
            shot.window.close()  # cancels and waits for a job a failed shot left running
    return 0


if __name__ == "__main__":
    sys.exit(main())
