"""The WER-vs-RTF legend sits in a corner where it hides no point."""

from __future__ import annotations

from PySide6.QtCore import QPointF

from speechquant.gui.results_view import ResultsView

from .test_window import fake_result

SOURCE = "replica:wav2vec2-tiny"
HYPS = ["hello world", "the cat sat"]


def test_the_legend_leaves_a_slower_run_at_the_bottom_right_visible(qtbot, history):
    history.add_run(fake_result(SOURCE, None, 10.0, 0.4, 4000, HYPS), kind="baseline", group_id="g")
    history.add_run(  # as slow runs of the same WER are: right of the baseline, at its height
        fake_result(SOURCE, "all-dynamic", 10.0, 0.6, 1000, HYPS), kind="compare", group_id="g"
    )
    view = ResultsView(history, confirm=False)
    qtbot.addWidget(view)
    view.resize(880, 420)  # the Results tab of a 1024×700 window
    view.show()
    qtbot.waitExposed(view)
    view.set_current_source(SOURCE)
    chart = view.scatter
    qtbot.waitUntil(lambda: chart.plot.getPlotItem().getViewBox().width() > 100)
    box = chart.legend.sceneBoundingRect()
    vb = chart.plot.getPlotItem().getViewBox()
    for x, y in [(0.4, 10.0), (0.6, 10.0)]:
        assert not box.contains(vb.mapViewToScene(QPointF(x, y))), (chart.legend_corner, x, y)
    assert chart.legend_corner == "top-right"
