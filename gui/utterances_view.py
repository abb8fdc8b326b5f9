"""Per-utterance transcripts of two runs against the reference, with word errors highlighted."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.history import HistoryStore, RunSummary
from speechquant.core.evaluation.metrics import WordOp, word_errors
from speechquant.core.evaluation.runs import find_baseline, is_baseline, run_label

from .utterance_player import PlayerFactory, UtterancePlayer

STYLE = {
    "substitution": "background-color:#ffe0b2; color:#b71c1c; font-weight:bold;",
    "deletion": "color:#9e9e9e; text-decoration:line-through;",
    "insertion": "background-color:#c8e6c9; color:#1b5e20; text-decoration:underline;",
}
LEGEND = (
    f'<span style="{STYLE["substitution"]}">substituted</span> '
    f'<span style="color:#777">(reference word in small print)</span> · '
    f'<span style="{STYLE["deletion"]}">deleted</span> · '
    f'<span style="{STYLE["insertion"]}">inserted</span> — words after the run\'s text normalizer'
)
MAX_UTTERANCES = 300


def mark_words(ops: list[WordOp]) -> tuple[str, int]:
    """HTML of the hypothesis with its errors marked, and the number of errors."""
    parts = []
    errors = 0
    for op in ops:
        if op.op == "correct":
            parts.append(html.escape(op.hyp or ""))
            continue
        errors += 1
        style = STYLE[op.op]
        if op.op == "substitution":
            parts.append(
                f'<span style="{style}">{html.escape(op.hyp or "")}</span>'
                f'<span style="color:#777; font-size:small"> [{html.escape(op.ref or "")}]</span>'
            )
        elif op.op == "deletion":
            parts.append(f'<span style="{style}">{html.escape(op.ref or "")}</span>')
        else:
            parts.append(f'<span style="{style}">{html.escape(op.hyp or "")}</span>')
    return " ".join(parts) or '<span style="color:#999">(empty)</span>', errors


def choice_label(run: RunSummary) -> str:
    """A run in the pickers: its :func:`run_label`, then (for a plan) the plan and its schemes."""
    if is_baseline(run):
        return run_label(run) + (f" ({run.plan_name or 'float32'})" if run.name else "")
    plan = f"{run.plan_name}: " if run.name else ""
    return f"{run_label(run)} ({plan}{run.plan_summary})"


def _pair(first: dict[str, Any], second: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [first] if second is None or second is first else [first, second]


def utterance_ids(first: dict[str, Any], second: dict[str, Any] | None) -> list[str]:
    """The utterances of the page in its order: the first run's, then the second's others."""
    by_id = [
        {u["id"]: u for u in result.get("utterances") or []} for result in _pair(first, second)
    ]
    return list(by_id[0]) + [i for table in by_id[1:] for i in table if i not in by_id[0]]


def run_data(first: dict[str, Any], second: dict[str, Any] | None) -> str | None:
    """The DATA the runs evaluated (the first's, else the second's), as the history stored it."""
    for result in _pair(first, second):
        data = (result["history"].get("settings") or {}).get("data")
        if data:
            return str(data)
    return None


def utterances_html(
    first: dict[str, Any], second: dict[str, Any] | None, playable: bool = False
) -> str:
    """The page: per utterance the reference, then each run's marked transcript; ``playable``
    adds a ▶ link (``play:<index>``) to each utterance's heading."""
    runs = _pair(first, second)
    labels = [run_label(result) for result in runs]
    by_id = [{u["id"]: u for u in result.get("utterances") or []} for result in runs]
    ids = utterance_ids(first, second)
    totals = " · ".join(
        f"<b>{html.escape(label)}</b>: WER {result.get('wer', float('nan')):.2f} %, "
        f"RTF {result.get('rtf', float('nan')):.3f}"
        for label, result in zip(labels, runs, strict=True)
    )
    out = [f"<p>{totals}</p>", f'<p style="color:#444">{LEGEND}</p>']
    for index, utt_id in enumerate(ids[:MAX_UTTERANCES]):
        ref = next((t[utt_id]["ref"] for t in by_id if utt_id in t), "")
        link = f' <a href="play:{index}">▶ play</a>' if playable else ""
        out.append(
            f'<h4 style="margin-bottom:2px">{html.escape(utt_id)}{link}</h4>'
            '<table cellspacing="0" cellpadding="3" width="100%">'
            f'<tr><td width="170" style="color:#555">reference</td><td>{html.escape(ref or "")}</td><td></td></tr>'
        )
        for label, result, table in zip(labels, runs, by_id, strict=True):
            if utt_id not in table:
                out.append(
                    f"<tr><td>{html.escape(label)}</td><td><i>not in this run</i></td><td></td></tr>"
                )
                continue
            normalizer = ((result["history"].get("settings") or {}).get("normalizer")) or "whisper"
            ops = word_errors(ref or "", table[utt_id].get("hyp") or "", normalizer)
            marked, errors = mark_words(ops)
            words = sum(1 for op in ops if op.ref is not None)
            wer = 100.0 * errors / words if words else (0.0 if not errors else 100.0)
            out.append(
                f'<tr><td style="color:#555">{html.escape(label)}</td><td>{marked}</td>'
                f'<td align="right" width="90" style="color:#555">WER {wer:.0f} %</td></tr>'
            )
        out.append("</table>")
    if len(ids) > MAX_UTTERANCES:
        out.append(f"<p>… {len(ids) - MAX_UTTERANCES} more utterances not shown</p>")
    if not ids:
        out.append("<p>These runs hold no utterances.</p>")
    return "\n".join(out)


class UtterancesView(QWidget):
    """Pick a float (reference) run and a quantized run; read their transcripts side by side
    and hear each utterance (``player_factory`` gives the audio output; tests pass a fake)."""

    def __init__(
        self,
        history: HistoryStore,
        parent: QWidget | None = None,
        player_factory: PlayerFactory | None = None,
    ) -> None:
        super().__init__(parent)
        self.history = history
        self.playback = UtterancePlayer(player_factory) if player_factory else UtterancePlayer()
        self.playback.checked.connect(self.update_page)
        self.first = QComboBox()
        self.second = QComboBox()
        for combo in (self.first, self.second):
            combo.setMinimumContentsLength(28)
            combo.currentIndexChanged.connect(lambda _i: self.update_page())
        reload_button = QPushButton("Reload runs")
        reload_button.clicked.connect(lambda: self.load_runs(self._source))
        self.browser = QTextBrowser()
        self.browser.setObjectName("utterances")
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._link)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Float / reference run:"))
        bar.addWidget(self.first)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Quantized run:"))
        bar.addWidget(self.second)
        bar.addStretch(1)
        bar.addWidget(reload_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.playback)
        layout.addWidget(self.browser, 1)
        self._source: str | None = None
        self._runs: list[RunSummary] = []
        self._ids: list[str] = []

    def load_runs(
        self, source: str | None, first: int | None = None, second: int | None = None
    ) -> None:
        """List the runs of ``source`` (all when None) and show ``first`` against ``second``.

        Without ids: the newest quantized run against its float baseline.
        """
        self._source = source
        try:
            self._runs = self.history.list_runs(source=source)
        except SpeechquantError as exc:
            self.browser.setHtml(f"<p>{html.escape(str(exc))}</p>")
            return
        if second is None:
            newest = next((r for r in self._runs if not is_baseline(r)), None)
            second = newest.id if newest else (self._runs[0].id if self._runs else None)
        if first is None and second is not None:
            chosen = next((r for r in self._runs if r.id == second), None)
            base = find_baseline(chosen, self._runs) if chosen else None
            first = base.id if base else second
        for combo, wanted in ((self.first, first), (self.second, second)):
            combo.blockSignals(True)
            combo.clear()
            for run in self._runs:
                combo.addItem(choice_label(run), run.id)
            row = combo.findData(wanted)
            combo.setCurrentIndex(row if row >= 0 else (0 if combo.count() else -1))
            combo.blockSignals(False)
        self.update_page()

    def refresh_labels(self) -> None:
        """Relist the runs (after a rename, say), keeping the two chosen."""
        self.load_runs(self._source, self.first.currentData(), self.second.currentData())

    def show_pair(self, first: int, second: int) -> None:
        known = {run.id for run in self._runs}
        if first not in known or second not in known:
            self.load_runs(None, first, second)
            return
        for combo, wanted in ((self.first, first), (self.second, second)):
            combo.blockSignals(True)
            combo.setCurrentIndex(combo.findData(wanted))
            combo.blockSignals(False)
        self.update_page()

    def update_page(self) -> None:
        first_id, second_id = self.first.currentData(), self.second.currentData()
        if first_id is None:
            self.playback.set_utterances([], None, None)
            self.browser.setHtml("<p>No runs yet: run a benchmark from the Plan tab.</p>")
            return
        try:
            first = self.history.get_run(int(first_id))
            second = (
                self.history.get_run(int(second_id)) if second_id not in (None, first_id) else None
            )
            self._ids = utterance_ids(first, second)[:MAX_UTTERANCES]
            self.playback.set_utterances(self._ids, run_data(first, second), int(first_id))
            page = utterances_html(first, second, playable=self.playback.playable)
        except SpeechquantError as exc:
            page = f"<p>{html.escape(str(exc))}</p>"
        self.browser.setHtml(page)

    def _link(self, url: QUrl) -> None:
        """A ▶ link of the page: play that utterance."""
        text = url.toString()
        if text.startswith("play:") and text[5:].isdigit() and int(text[5:]) < len(self._ids):
            self.playback.play(self._ids[int(text[5:])])
