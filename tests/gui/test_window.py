"""The main window without benchmarks: loading, plans, settings, results actions, errors."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QMessageBox

from speechquant.core.evaluation.results import Comparison
from speechquant.core.progress import Progress
from speechquant.core.quantization.plan import Plan
from speechquant.gui.main_window import TAB_UTTERANCES, MainWindow
from speechquant.gui.runs_table_model import HEADERS
from speechquant.gui.settings_panel import SettingsPanel
from speechquant.gui.worker import Worker, active_threads, start_worker

LAYERS = "encoder.wav2vec2.model.encoder.layers"


def fake_result(source: str, plan: str | None, wer: float, rtf: float, size: int, hyps: list[str]):
    refs = ["hello world", "the cat sat"]
    return {
        "source": source,
        "plan": None if plan is None else {"name": plan, "entries": {LAYERS: "dynamic"}},
        "scheme_summary": {} if plan is None else {"dynamic": 1},
        "engine": "x86",
        "threads": 1,
        "n_utterances": 2,
        "wer": wer,
        "rtf": rtf,
        "rtf_encoder": rtf / 2,
        "model_bytes": size,
        "audio_seconds": 2.0,
        "insertions": 0,
        "deletions": 0,
        "substitutions": 1,
        "ref_words": 5,
        "warmup": 0,
        "repeats": 1,
        "file_bytes": size,
        "peak_rss_bytes": 0,
        "skipped": [],
        "torch_version": "2.11.0",
        "speechbrain_version": "1.1.2",
        "started_at": "2026-12-01T00:00:00+00:00",
        "utterances": [
            {"id": f"u{i}", "ref": ref, "hyp": hyp, "seconds": 0.1, "audio_seconds": 1.0}
            for i, (ref, hyp) in enumerate(zip(refs, hyps, strict=True))
        ],
    }


@pytest.fixture
def three_runs(history):
    group = "g1"
    base = history.add_run(
        fake_result("replica:wav2vec2-tiny", None, 10.0, 0.4, 4000, ["hello world", "the cat sat"]),
        kind="baseline",
        group_id=group,
    )
    timed = fake_result(
        "replica:wav2vec2-tiny", "all-dynamic", 20.0, 0.2, 1000, ["hello word", "cat sat down"]
    )
    timed["comparison"] = Comparison(
        delta_wer=10.0, delta_wer_ci=None, p_worse=None, speedup=1.9, speedup_ci=[1.7, 2.1],
        speedup_encoder=None, speedup_encoder_ci=None, size_ratio=4.0, significant_wer=False,
        significant_speed=True, baseline_started_at=None, paired=True,
    ).to_json()  # fmt: skip
    fast = history.add_run(
        timed,
        kind="compare",
        group_id=group,
    )
    slow = history.add_run(
        fake_result("replica:wav2vec2-tiny", "bad", 30.0, 0.5, 2000, ["yellow", "the cat sat"]),
        kind="compare",
        group_id=group,
    )
    return base, fast, slow


def test_open_source_loads_in_a_worker_and_is_remembered(qtbot, gui_settings, history):
    window = MainWindow(settings=gui_settings, history=history, show_error_dialogs=False)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.modelLoaded, timeout=120_000):
        assert window.open_source("replica:wav2vec2-tiny")
        assert window.job is not None and not window.run_panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert window.tree_model.rowCount() == 1  # mods: encoder
    assert "replica:wav2vec2-tiny" in window.windowTitle()
    assert window.recent_sources() == ["replica:wav2vec2-tiny"]
    assert [a.text() for a in window.recent_menu.actions()] == ["replica:wav2vec2-tiny"]
    assert window.run_panel.run_button.isEnabled()


def test_an_unusable_history_falls_back_to_a_temporary_one(
    qtbot, gui_settings, tmp_path, monkeypatch
):
    broken = tmp_path / "data"
    broken.mkdir()
    (broken / "history.sqlite").write_text("not a database")
    monkeypatch.setenv("SPEECHQUANT_DATA", str(broken))
    window = MainWindow(settings=gui_settings, show_error_dialogs=False)
    qtbot.addWidget(window)
    assert window.history.path != broken / "history.sqlite"
    assert "history" in window.run_panel.log.toPlainText()


def test_a_bad_source_reports_one_line_and_keeps_the_model(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.jobFailed, timeout=30_000) as failed:
        window.open_source(str(tmp_path / "nowhere"))
    qtbot.waitUntil(lambda: window.job is None, timeout=10_000)
    assert "does not exist" in failed.args[0] and "\n" not in failed.args[0]
    assert window.model is not None and window.tree_model.rowCount() == 1


def test_presets_and_plan_files_round_trip(qtbot, window, tmp_path):
    assert window.apply_preset("tutorial")
    assert window.plan.name == "tutorial" and "static" in window.plan.entries.values()
    assert "static" in window.plan_panel.summary.text()
    window.settings_panel.dynamic_dtype.setCurrentText("float16")
    window.settings_panel.decoder_step.setCurrentText("scripted")
    path = tmp_path / "plan.json"
    assert window.save_plan_file(str(path))
    saved = json.loads(path.read_text())
    assert saved["settings"]["dynamic_dtype"] == "float16" and saved["name"] == "tutorial"
    assert saved["settings"]["decoder_step"] == "scripted"
    window.apply_preset("none")
    window.settings_panel.dynamic_dtype.setCurrentText("qint8")
    window.settings_panel.decoder_step.setCurrentText("native")
    assert window.plan.entries == {}
    assert window.load_plan_file(str(path))
    assert window.plan.entries == Plan.load(path).entries
    assert window.settings_panel.dynamic_dtype.currentText() == "float16"
    assert window.settings_panel.decoder_step.currentText() == "scripted"


def test_a_bad_plan_file_is_reported_and_the_plan_kept(qtbot, window, tmp_path):
    window.apply_preset("all-dynamic")
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"format": "speechquant-plan", "version": 1, "entries": {"nope": "dynamic"}})
    )
    assert not window.load_plan_file(str(bad))
    assert window.plan.name == "all-dynamic"
    assert "nope" in window.run_panel.log.toPlainText()


def test_filter_box_filters_the_tree(qtbot, window):
    window.plan_panel.filter.setText("feed_forward")
    proxy = window.plan_panel.proxy
    assert proxy.rowCount() == 1
    window.plan_panel.filter.clear()
    assert proxy.rowCount() == window.tree_model.rowCount()


def test_settings_are_remembered(qtbot, gui_settings, tmp_path):
    panel = SettingsPanel(gui_settings)
    qtbot.addWidget(panel)
    panel.dataset.setText(str(tmp_path))
    panel.limit.setValue(7)
    panel.threads.setValue(2)
    panel.engine.setCurrentText("qnnpack")
    panel.static_qconfig.setCurrentText("histogram")
    panel.decoder_step.setCurrentText("scripted")
    again = SettingsPanel(gui_settings)
    qtbot.addWidget(again)
    bench = again.bench_settings()
    assert again.dataset_spec() == str(tmp_path)
    assert (bench.limit, bench.threads, bench.calib) == (7, 2, None)
    quant = again.quant_settings()
    assert (quant.engine, quant.static_qconfig) == ("qnnpack", "histogram")
    assert quant.decoder_step == "scripted"


def test_results_table_charts_compare_and_delete(qtbot, window, three_runs):
    base, fast, slow = three_runs
    results = window.results
    results.set_current_source("replica:wav2vec2-tiny")
    assert results.model.rowCount() == 3
    assert sorted(results.scatter.run_ids) == [base, fast, slow]
    assert results.scatter.front_ids == [fast, base]  # the slow, worse run is dominated
    # the speed-up timed together with the plan (not 0.4 / 0.2); "bad" was never paired
    assert results.bars.speedup.values == [1.9]
    speed_column = [
        results.model.headerData(c, Qt.Orientation.Horizontal)
        for c in range(results.model.columnCount())
    ].index("speed-up")
    speeds = {
        int(results.proxy.index(r, 0).data()): results.proxy.index(r, speed_column).data()
        for r in range(results.proxy.rowCount())
    }
    assert speeds == {base: "1.00×", fast: "1.90×", slow: "-"}
    assert results.bars.shrink.values == [4.0, 2.0]
    tips = [str(spot) for spot in results.scatter.plans.data["data"]]
    assert any("all-dynamic" in tip and "dynamic×1" in tip for tip in tips)
    # sortable by WER
    results.table.sortByColumn(HEADERS.index("WER %"), Qt.SortOrder.AscendingOrder)
    assert results.proxy.index(0, 0).data() == str(base)
    results.select_ids([base, slow])
    assert results.compare_button.isEnabled()
    results.compare_selected()
    # the two runs were not timed in one session: their RTFs are never divided
    assert results.comparison.item(1, 4).text() == "n/a: not timed together"
    results.select_ids([base, fast])
    results.compare_selected()
    assert results.comparison_box.isVisible() or not window.isVisible()
    assert results.comparison.rowCount() == 2
    assert results.comparison.item(1, 4).text() == "1.90×"  # the one timed with the plan
    assert window.tabs.currentIndex() == TAB_UTTERANCES
    page = window.utterances.browser.toHtml()
    text = window.utterances.browser.toPlainText()
    assert "hello word" in text and "[world]" in text and "down" in text
    assert "line-through" in page or "underline" in page
    results.select_ids([slow])
    results.delete_selected()
    assert results.model.rowCount() == 2
    assert slow not in results.scatter.run_ids
    assert f"#{slow}" in window.run_panel.log.toPlainText()


def test_the_data_column_shows_each_runs_dataset_and_pairs_by_it(qtbot, window):
    source = "replica:wav2vec2-tiny"
    hyps = ["hello world", "the cat sat"]
    on_dev = window.history.add_run(
        fake_result(source, None, 10.0, 0.4, 4000, hyps),
        kind="baseline",
        settings={"data": "/corpus/dev"},
    )
    on_test = window.history.add_run(
        fake_result(source, None, 5.0, 0.8, 4000, hyps),
        kind="baseline",
        settings={"data": "/corpus/test"},
    )
    plan = window.history.add_run(
        fake_result(source, "p", 12.0, 0.2, 1000, hyps), settings={"data": "/corpus/dev"}
    )
    legacy = window.history.add_run(fake_result(source, "old", 12.0, 0.2, 1000, hyps))
    results = window.results
    results.set_current_source(source)
    headers = [
        results.model.headerData(c, Qt.Orientation.Horizontal)
        for c in range(results.model.columnCount())
    ]
    column = headers.index("data")
    shown = {
        int(results.proxy.index(r, 0).data()): results.proxy.index(r, column).data()
        for r in range(results.proxy.rowCount())
    }
    assert shown == {on_dev: "dev", on_test: "test", plan: "dev", legacy: "-"}
    rows = {row.run.id: row for row in results.model.rows}
    assert rows[plan].baseline.id == on_dev and rows[plan].delta_wer == 2.0  # not the newer one
    assert rows[plan].speedup is None  # stored RTFs of separate sessions are never divided
    assert rows[legacy].baseline is None
    tip = results.proxy.index(0, column).data(Qt.ItemDataRole.ToolTipRole)
    assert "data: " in tip


def test_error_dialogs_show_when_enabled(qtbot, gui_settings, history, tiny_model, tmp_path):
    window = MainWindow(settings=gui_settings, history=history, show_error_dialogs=True)
    qtbot.addWidget(window)
    window.run_benchmark()  # no model yet
    box = window._error_box
    assert isinstance(box, QMessageBox) and "open a model" in box.text()
    box.close()
    window.set_model(tiny_model)
    window.settings_panel.dataset.setText(str(tmp_path / "missing"))
    assert not window.run_benchmark()  # refused before any job starts
    assert window.job is None
    assert window._error_box is not box and "does not exist" in window._error_box.text()
    window._error_box.close()


def test_closing_mid_run_cancels_and_waits(qtbot, gui_settings, history, tiny_model, tiny_data):
    window = MainWindow(settings=gui_settings, history=history, show_error_dialogs=False)
    qtbot.addWidget(window)
    window.set_model(tiny_model)
    window.settings_panel.dataset.setText(str(tiny_data))
    window.settings_panel.repeats.setValue(50)
    window.settings_panel.warmup.setValue(0)
    window.settings_panel.threads.setValue(1)
    window.apply_preset("all-dynamic")
    with qtbot.waitSignal(window.jobProgress, timeout=60_000):
        window.run_benchmark()
    job = window.job
    window.close()
    assert not job.running
    assert history.list_runs(kind="compare") == []


class Recorder(QObject):
    """Receives a worker's signals in the GUI thread (queued), as the window does."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.events: list[tuple] = []
        for name in ("started", "progress", "result", "failed", "cancelled", "finished"):
            getattr(worker, name).connect(getattr(self, "on_" + name))

    @Slot()
    def on_started(self) -> None:
        self.events.append(("started",))

    @Slot(int, int, str)
    def on_progress(self, done: int, total: int, stage: str) -> None:
        self.events.append(("progress", done, total, stage))

    @Slot(object)
    def on_result(self, value: object) -> None:
        self.events.append(("result", value))

    @Slot(str)
    def on_failed(self, text: str) -> None:
        self.events.append(("failed", text))

    @Slot()
    def on_cancelled(self) -> None:
        self.events.append(("cancelled",))

    @Slot()
    def on_finished(self) -> None:
        self.events.append(("finished",))


def run_worker(qtbot, fn) -> list[tuple]:
    worker = Worker(fn, "unit")
    recorder = Recorder(worker)
    handle = start_worker(worker)
    qtbot.waitUntil(lambda: ("finished",) in recorder.events, timeout=10_000)
    assert handle.wait(10_000)
    qtbot.waitUntil(lambda: not handle.running and handle.qthread not in active_threads())
    return recorder.events


def test_worker_emits_started_progress_result_finished(qtbot):
    def job(progress, cancel):
        progress(Progress(1, 2, "half"))
        return 42

    assert run_worker(qtbot, job) == [
        ("started",),
        ("progress", 1, 2, "half"),
        ("result", 42),
        ("finished",),
    ]


def test_worker_reports_unexpected_errors_in_one_line(qtbot):
    def job(progress, cancel):
        raise RuntimeError("boom\nsecond line")

    assert run_worker(qtbot, job) == [("started",), ("failed", "RuntimeError: boom"), ("finished",)]


def test_worker_cancel_gives_no_result(qtbot):
    def job(progress, cancel):
        cancel.cancel()
        cancel.raise_if_cancelled()
        return 1

    assert run_worker(qtbot, job) == [("started",), ("cancelled",), ("finished",)]
