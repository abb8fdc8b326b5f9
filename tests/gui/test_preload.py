"""The startup pre-import: a plain thread, best effort, waited for by a model load."""

from __future__ import annotations

import sys

from speechquant.gui import jobs, preload


def test_preimport_imports_in_a_thread_and_freezes_what_it_imported(monkeypatch):
    freezes: list[int] = []
    monkeypatch.setattr(preload.gc, "freeze", lambda: freezes.append(1))
    monkeypatch.setattr(preload, "_thread", None)
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    thread = preload.start_preimport(("no_such_module_xyz", "colorsys"))
    assert preload.start_preimport() is thread  # once per process
    assert preload.wait_preimport(30) and not thread.is_alive()
    assert thread.name == "speechquant-preimport" and thread.daemon
    assert "colorsys" in sys.modules  # a failing name does not stop the others
    assert freezes  # the imported modules leave the garbage collector's full scans


def test_the_default_list_names_what_loading_a_model_imports():
    assert "speechbrain.inference.ASR" in preload.PREIMPORTS
    assert any(name.startswith("transformers") for name in preload.PREIMPORTS)


def test_a_load_job_waits_for_the_preimport(monkeypatch, tiny_model):
    calls: list[str] = []
    monkeypatch.setattr(jobs, "wait_preimport", lambda: calls.append("wait"))
    monkeypatch.setattr(
        jobs, "open_model", lambda source, progress: calls.append(source) or tiny_model
    )
    loaded = jobs.load_job("replica:wav2vec2-tiny")(None, None)
    assert calls == ["wait", "replica:wav2vec2-tiny"] and loaded.model is tiny_model
