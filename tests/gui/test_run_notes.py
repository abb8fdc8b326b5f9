"""Results tab: a run's own name, tags and note, edited from its right-click menu, shown in the
table and used by the Tag filter and the search."""

from __future__ import annotations

import pytest

from speechquant.core.evaluation.history import RunNotes
from speechquant.gui.runs_table_model import HEADERS

from .test_window import fake_result

SOURCE = "replica:wav2vec2-tiny"


@pytest.fixture
def runs(history):
    base = history.add_run(fake_result(SOURCE, None, 10.0, 0.4, 4000, ["a", "b"]), kind="baseline")
    fast = history.add_run(
        fake_result(SOURCE, "all-dynamic", 12.0, 0.2, 1000, ["a", "c"]), kind="bench"
    )
    return base, fast


def _cell(results, run_id: int, header: str) -> str:
    row = next(i for i, r in enumerate(results.model.rows) if r.run.id == run_id)
    return results.model.index(row, HEADERS.index(header)).data()


def test_edit_name_tags_and_note_from_the_menu(qtbot, window, history, runs):
    base, fast = runs
    results = window.results
    results.refresh()
    menu = results.row_menu([fast])
    actions = {a.text(): a for a in menu.actions()}
    assert actions["Edit name, tags and note…"].isEnabled()
    assert not actions["Compare"].isEnabled()
    assert not results.row_menu([base, fast]).actions()[0].isEnabled()  # one run at a time
    actions["Edit name, tags and note…"].trigger()
    dialog = results.notes.dialog
    assert dialog is not None and dialog.isVisible() and dialog.run_id == fast
    dialog.name.setText("int8 everywhere")
    dialog.tags.setText("keep, paper, keep")
    dialog.note.setPlainText("measured before the engine change")
    dialog.accept()
    assert not dialog.isVisible()
    assert history.notes(fast) == RunNotes(
        "int8 everywhere", ("keep", "paper"), "measured before the engine change"
    )
    assert _cell(results, fast, "name") == "int8 everywhere"
    assert _cell(results, fast, "tags") == "keep, paper"
    assert results.selected_ids() == [fast]
    tip = results.model.index(0, 0).data(0x0003)  # ToolTipRole
    assert tip is not None
    assert "int8 everywhere" in window.run_panel.log.toPlainText()

    # the dialog opens with what is stored
    again = results.edit_notes(fast)
    assert again.name.text() == "int8 everywhere" and again.tags.text() == "keep, paper"
    again.reject()


def test_bad_tags_keep_the_dialog_open_and_change_nothing(qtbot, window, history, runs):
    _, fast = runs
    history.annotate(fast, tags=["kept"])
    window.results.refresh()
    dialog = window.results.edit_notes(fast)
    dialog.tags.setText("x" * 41)
    dialog.accept()
    assert dialog.isVisible() and "longer than 40 characters" in dialog.error.text()
    assert history.notes(fast).tags == ("kept",)
    dialog.reject()


def test_tag_filter_and_search_find_runs_by_their_notes(qtbot, window, history, runs):
    base, fast = runs
    history.annotate(fast, tags=["keep"], note="the one for the paper")
    history.annotate(base, name="reference run", tags=["ref"])
    results = window.results
    results.refresh()
    tags = [results.tag.itemText(i) for i in range(results.tag.count())]
    assert tags == ["All tags", "keep", "ref"] and results.tag.isEnabled()
    results.tag.setCurrentIndex(results.tag.findData("keep"))
    assert [r.run.id for r in results.model.rows] == [fast]
    results.tag.setCurrentIndex(0)
    assert len(results.model.rows) == 2
    results.search.setText("for the paper")
    assert [r.run.id for r in results.model.rows] == [fast]
    results.search.setText("reference")
    assert [r.run.id for r in results.model.rows] == [base]
    results.search.setText("")
