"""The Language box: a multilingual Whisper's decoder language, set, shown, recorded, remembered.

The Whisper models are the toy CTranslate2 built-ins of ``tests/model/ct2_toy.py`` (Whisper's
real vocabulary layout, a tiny random network), built offline into a private cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from speechquant.core.cluster.pool import ShardPool
from speechquant.core.cluster.settings import ClusterSettings
from speechquant.core.cluster.worker import _open as open_on_worker
from speechquant.core.sources import open_model
from speechquant.gui import jobs
from speechquant.gui.language_control import LANGUAGES_KEY
from speechquant.gui.main_window import MainWindow
from speechquant.gui.runs_table_model import HEADERS

from ..model.ct2_toy import LANGUAGE_CODES, toy_builtins
from .helpers import fast_settings

MULTI, ENGLISH = "demo:toy-multilingual", "demo:toy-en"
TIMEOUT = 120_000
LANGS = ("de", "fr", "en")


@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with toy_builtins(tmp_path_factory, prefix="sq_gui_toy") as site:
        yield site


def _window(qtbot, settings: QSettings, history) -> MainWindow:
    win = MainWindow(settings=settings, history=history, show_error_dialogs=False)
    qtbot.addWidget(win)
    return win


def _open_source(qtbot, win: MainWindow, source: str) -> None:
    with qtbot.waitSignal(win.modelLoaded, timeout=TIMEOUT):
        assert win.open_source(source)
    qtbot.waitUntil(lambda: win.job is None, timeout=10_000)


def _log(win: MainWindow) -> str:
    return win.run_panel.log.toPlainText()


@pytest.fixture
def multi_window(qtbot, toys, gui_settings, history) -> Iterator[MainWindow]:
    win = _window(qtbot, gui_settings, history)
    _open_source(qtbot, win, MULTI)
    yield win
    win.close()


def test_the_box_lists_the_languages_core_knows_and_follows_the_model(
    qtbot, multi_window, tiny_model
):
    win, box = multi_window, multi_window.language.box
    assert box.isEnabled()
    assert [box.itemData(i) for i in range(box.count())] == list(LANGUAGE_CODES)
    assert box.currentData() == "en" and box.currentText() == "en · english"
    assert "language en" in win.model_label.text()
    win.set_model(tiny_model)  # a model without a language token
    assert not box.isEnabled() and box.count() == 0 and box.currentText() == ""
    assert "takes no language" in box.toolTip() and "language" not in win.model_label.text()
    _open_source(qtbot, win, ENGLISH)
    assert not box.isEnabled() and box.count() == 1 and box.currentData() == "en"
    assert "English-only" in box.toolTip() and "language" not in win.model_label.text()


def test_choosing_a_language_sets_it_and_a_run_records_it(qtbot, multi_window, tiny_data):
    win, box = multi_window, multi_window.language.box
    box.setCurrentIndex(box.findData("de"))
    box.activated.emit(box.currentIndex())  # what picking it from the list sends
    assert win.model.language == "de"
    assert "language de" in win.model_label.text() and "language de" in _log(win)
    fast_settings(win, tiny_data, limit=2)
    assert win.apply_preset("all-dynamic")
    with qtbot.waitSignal(win.runCompleted, timeout=TIMEOUT) as done:
        assert win.run_benchmark()
        assert not box.isEnabled()  # no language change under a running job
        assert not win.language.apply("fr")
        assert "is running; change the language when it is done" in _log(win)
    qtbot.waitUntil(lambda: win.job is None, timeout=10_000)
    outcome = done.args[0]
    assert outcome.baseline["language"] == "de" and outcome.result["language"] == "de"
    assert win.model.language == "de" and box.isEnabled()
    column = HEADERS.index("model")
    shown = {win.results.model.index(r, column).data() for r in range(win.results.model.rowCount())}
    assert shown == {f"{MULTI} · de"}

    assert win.language.apply("fr")  # another language gets its own float baseline
    with qtbot.waitSignal(win.runCompleted, timeout=TIMEOUT) as again:
        assert win.run_benchmark()
    qtbot.waitUntil(lambda: win.job is None, timeout=10_000)
    assert not again.args[0].baseline_cached and again.args[0].baseline["language"] == "fr"
    plan = win.current_plan()  # an export takes the metrics of a run in its own language
    found = {code: jobs.latest_matching_run(win.history, MULTI, plan, [], code) for code in LANGS}
    assert found["de"][0] == outcome.run_id and found["fr"][0] == again.args[0].run_id
    assert found["en"] is None


def test_a_bad_language_is_one_line_and_the_model_is_unchanged(qtbot, multi_window, tiny_model):
    win, box = multi_window, multi_window.language.box
    edit = box.lineEdit()
    edit.setText("xx")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    last = _log(win).splitlines()[-1]
    assert "ERROR" in last and "knows no language 'xx'" in last
    assert win.model.language == "en" and box.currentData() == "en"
    assert win.language.remembered() == {}
    edit.setText("JA")  # a typed code counts too
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert win.model.language == "ja" and box.currentData() == "ja"
    win.set_model(tiny_model)
    assert not win.language.apply("de") and "is not a Whisper model" in _log(win)
    assert tiny_model.language is None


def test_the_language_is_remembered_per_source_in_a_new_window(
    qtbot, toys, gui_settings, history, tiny_model
):
    win = _window(qtbot, gui_settings, history)
    _open_source(qtbot, win, MULTI)
    assert win.language.apply("fr")
    win.set_model(tiny_model)  # another source keeps its own (none)
    win.close()
    gui_settings.sync()

    again = _window(qtbot, QSettings(gui_settings.fileName(), QSettings.Format.IniFormat), history)
    _open_source(qtbot, again, MULTI)
    assert again.model.language == "fr" and again.language.box.currentData() == "fr"
    assert "language fr" in again.model_label.text()
    assert "language fr (the one last chosen for it)" in _log(again)
    again.close()


def test_a_remembered_language_the_model_refuses_is_dropped(qtbot, toys, gui_settings, history):
    gui_settings.setValue(LANGUAGES_KEY, '{"demo:toy-multilingual": "xx"}')
    win = _window(qtbot, gui_settings, history)
    _open_source(qtbot, win, MULTI)
    assert win.model.language == "en"
    assert f"not setting the language remembered for {MULTI}" in _log(win)
    assert "knows no language 'xx'" in _log(win)
    assert win.language.remembered() == {}
    win.close()


def test_the_cluster_workers_get_the_chosen_language(qtbot, multi_window, tiny_data, monkeypatch):
    win = multi_window
    assert win.language.apply("es")
    handed: list = []

    @contextmanager
    def fake(settings, model, opener):
        handed.append((model, opener))
        yield None

    monkeypatch.setattr(jobs, "cluster_executor", fake)
    fast_settings(win, tiny_data, limit=1)
    win.settings_panel.cluster.setText("local:1")
    with qtbot.waitSignal(win.runCompleted, timeout=TIMEOUT):
        assert win.run_benchmark()
    qtbot.waitUntil(lambda: win.job is None, timeout=10_000)
    [(model, opener)] = handed
    assert model is win.model and opener is open_model

    class Store:
        def put(self, value):
            return value

    pool = ShardPool(ClusterSettings(address="local:1"), Store(), 1, model, opener)
    spec = pool._model_spec()
    assert spec.language == "es"
    worker_model = open_on_worker(spec, pool._packed)  # as a worker opens what the pool ships
    assert worker_model.source == MULTI and worker_model.language == "es"
