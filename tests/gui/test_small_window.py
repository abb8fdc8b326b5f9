"""The main window fits 1024×700 with every tab's content (long filter entries included)."""

from __future__ import annotations

from .test_window import fake_result

SOURCE = "replica:wav2vec2-tiny"
LONG_DATA = "/data/corpora/librispeech-dev-clean-a-long-named-subset/manifest.csv"


def test_the_window_fits_1024_by_700(qtbot, window):
    hyps = ["hello world", "the cat sat"]
    window.history.add_run(
        fake_result(SOURCE, None, 10.0, 0.4, 4000, hyps), kind="baseline",
        settings={"data": LONG_DATA},
    )  # fmt: skip
    window.results.set_current_source(SOURCE)
    window.show()
    pages = {
        window.tabs.tabText(i): window.tabs.widget(i).minimumSizeHint().toTuple()
        for i in range(window.tabs.count())
    }
    assert all(w <= 1000 and h <= 450 for w, h in pages.values()), pages
    hint = window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 700, hint
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.width() == 1024 and window.height() == 700, timeout=5000)


def test_a_narrow_filter_box_still_shows_whole_entries(qtbot, window):
    data = window.results.subset
    window.history.add_run(
        fake_result(SOURCE, None, 10.0, 0.4, 4000, ["a", "b"]), kind="baseline",
        settings={"data": LONG_DATA},
    )  # fmt: skip
    window.results.set_current_source(SOURCE)
    entry = "librispeech-dev-clean-a-long-named-subset/manifest.csv · 2 utts"
    assert data.findText(entry) > 0
    assert 0 < data.minimumContentsLength() < len(entry)  # the box is narrower than the entry
    metrics = data.view().fontMetrics()
    assert data.view().minimumWidth() >= metrics.horizontalAdvance(entry)
    data.setCurrentIndex(data.findText(entry))
    assert entry in data.toolTip() and "Dataset" in data.toolTip()
