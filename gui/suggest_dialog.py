"""The Suggest plan dialog: budget, objective, schemes, engines, and how the DATA is split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from speechquant.core.data.datasets import DEMO, open_dataset
from speechquant.core.data.demo_data import load_sentences
from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.measure import OBJECTIVES
from speechquant.core.quantization.schemes import get_scheme, quantizing_schemes, search_candidates
from speechquant.core.quantization.settings import ENGINES, QuantSettings
from speechquant.core.search.plan_search import SearchSettings, default_engines
from speechquant.core.search.splits import SplitSizes, split_sizes

DEFAULT_SEARCH_N = 20
MIN_EVALUATION = 5
"""The default search split leaves at least this many utterances for evaluation."""


def count_utterances(data: str) -> int | None:
    """How many utterances ``data`` holds (the demo set without building it); None if unreadable."""
    if data.strip() == DEMO:
        return len(load_sentences())
    try:
        return len(open_dataset(data))
    except SpeechquantError:
        return None


def default_search_n(total: int | None, calibration: int) -> int:
    """Up to 20 search utterances, leaving calibration and at least a few for evaluation."""
    if total is None:
        return DEFAULT_SEARCH_N
    room = total - calibration - min(MIN_EVALUATION, max(1, (total - calibration) // 2))
    return max(1, min(DEFAULT_SEARCH_N, room))


@dataclass
class SuggestChoice:
    """What the Suggest plan dialog asks for (data and bench settings come from the panel)."""

    max_wer_increase: float = 1.0
    objective: str = "rtf"
    schemes: tuple[str, ...] = field(default_factory=search_candidates)
    engines: tuple[str, ...] = ()
    search_n: int = DEFAULT_SEARCH_N
    eval_n: int | None = None
    """Evaluation utterances (None: every one left after calibration and search)."""
    max_evals: int = 30

    def settings(self, quant: QuantSettings) -> SearchSettings:
        """Core's settings; raises its errors for values it rejects."""
        return SearchSettings(
            max_wer_increase=self.max_wer_increase,
            objective=self.objective,
            schemes=self.schemes,
            engines=self.engines or default_engines(),
            search_n=self.search_n,
            eval_n=self.eval_n,
            max_evals=self.max_evals,
            quant=quant,
        )


class SuggestDialog(QDialog):
    """Budget, objective, schemes, engines and split sizes; OK only when the splits fit.

    ``total`` is the number of utterances in the DATA (None when unknown), ``calib_n`` what
    static entries reserve from it (``own_calibration`` False: separate calibration data).
    """

    def __init__(
        self,
        choice: SuggestChoice,
        data: str,
        total: int | None,
        calib_n: int,
        own_calibration: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Suggest plan")
        self.data, self.total = data, total
        self.calib_n, self.own_calibration = calib_n, own_calibration
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0.0, 100.0)
        self.budget.setDecimals(2)
        self.budget.setSingleStep(0.25)
        self.budget.setSuffix(" WER points")
        self.budget.setValue(choice.max_wer_increase)
        self.objective = QComboBox()
        self.objective.addItems(list(OBJECTIVES))
        self.objective.setCurrentText(choice.objective)
        self.objective.setToolTip("rtf: fastest end-to-end; rtf-encoder: fastest encoder; size")
        self.schemes = {s: QCheckBox(s) for s in quantizing_schemes()}
        self.engines = {e: QCheckBox(e) for e in ENGINES}
        engines = choice.engines or default_engines()
        for name, box in self.schemes.items():
            box.setChecked(name in choice.schemes)
            box.toggled.connect(self._update_splits)
        for name, box in self.engines.items():
            box.setChecked(name in engines)
        self.search_n = QSpinBox()
        self.search_n.setRange(1, 10_000)
        calibration = calib_n if own_calibration else 0
        fits = total is None or split_sizes(
            total, choice.search_n, choice.eval_n, calib_n, own_calibration
        ).problem() is None  # fmt: skip
        self.search_n.setValue(choice.search_n if fits else default_search_n(total, calibration))
        self.search_n.setToolTip("Utterances every candidate plan is measured on")
        self.eval_n = QSpinBox()
        self.eval_n.setRange(0, 100_000)
        self.eval_n.setSpecialValueText("all the rest")
        self.eval_n.setValue(choice.eval_n or 0)
        self.eval_n.setToolTip("Utterances that confirm the plan found (never seen by the search)")
        self.max_evals = QSpinBox()
        self.max_evals.setRange(1, 1000)
        self.max_evals.setValue(choice.max_evals)
        self.splits = QLabel()
        self.splits.setObjectName("splitSizes")
        self.splits.setWordWrap(True)
        self.search_n.valueChanged.connect(self._update_splits)
        self.eval_n.valueChanged.connect(self._update_splits)
        form = QFormLayout(self)
        form.addRow(
            QLabel(
                "Search per-unit schemes for the fastest (or smallest) plan whose WER stays "
                "within the budget.\nThe whole dataset of the Data settings is split into "
                "calibration, search and evaluation utterances;\nbenchmark and quantization "
                "settings come from the settings panel."
            )
        )
        form.addRow("Max WER increase", self.budget)
        form.addRow("Objective", self.objective)
        form.addRow("Schemes", self._row(self.schemes.values()))
        form.addRow("Engines", self._row(self.engines.values()))
        form.addRow("Search utterances", self.search_n)
        form.addRow("Evaluation utterances", self.eval_n)
        form.addRow("Max plans measured", self.max_evals)
        form.addRow("Splits", self.splits)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self._update_splits()

    @staticmethod
    def _row(boxes: Any) -> QWidget:
        widget = QWidget()
        layout = QHBoxLayout(widget)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in boxes:
            layout.addWidget(box)
        layout.addStretch(1)
        return widget

    def sizes(self) -> SplitSizes | None:
        """The split sizes of the current choice (None when the DATA size is unknown)."""
        if self.total is None:
            return None
        calibrate = self.own_calibration and any(
            get_scheme(s).needs_calibration for s, box in self.schemes.items() if box.isChecked()
        )
        eval_n = self.eval_n.value() or None
        return split_sizes(self.total, self.search_n.value(), eval_n, self.calib_n, calibrate)

    def _update_splits(self, *_: Any) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        sizes = self.sizes()
        if sizes is None:
            self.splits.setText(f"{self.data}: the number of utterances is not known yet")
            self.splits.setStyleSheet("")
            return
        problem = sizes.problem(f"the dataset {self.data}")
        calibration = (
            f"{sizes.calibration} calibration · " if sizes.calibration else "no calibration · "
        )
        self.splits.setText(
            problem
            or f"{sizes.total} utterances: {calibration}{sizes.search} search · "
            f"{sizes.evaluation} evaluation"
        )
        self.splits.setStyleSheet("color: #c62828" if problem else "")
        if isinstance(ok, QPushButton):
            ok.setEnabled(problem is None)

    def choice(self) -> SuggestChoice:
        return SuggestChoice(
            max_wer_increase=self.budget.value(),
            objective=self.objective.currentText(),
            schemes=tuple(s for s, box in self.schemes.items() if box.isChecked()),
            engines=tuple(e for e, box in self.engines.items() if box.isChecked()),
            search_n=self.search_n.value(),
            eval_n=self.eval_n.value() or None,
            max_evals=self.max_evals.value(),
        )
