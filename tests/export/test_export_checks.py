"""Exports are verified by loading them back; an export of an export is refused."""

from __future__ import annotations

import pytest

from speechquant.core.cli.commands import _size_ratio
from speechquant.core.cli.main import main
from speechquant.core.errors import ExportError
from speechquant.core.export import writer
from speechquant.core.export.loader import load_quantized
from speechquant.core.export.writer import export_model, export_quantized
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    plan = make_preset("all-dynamic", build_tree(tiny_model.mods))
    return export_quantized(tiny_model, plan, tmp_path_factory.mktemp("exp") / "dyn")


def test_export_of_an_export_is_refused(exported, tmp_path, capsys):
    loaded = load_quantized(exported)
    # saving the loaded export again under its own plan is a verified copy, not a new plan
    assert load_quantized(export_model(loaded, tmp_path / "copy")).plan.name == loaded.plan.name
    plan = make_preset("none", build_tree(loaded.mods))
    with pytest.raises(ExportError, match="is already an export"):
        export_quantized(loaded, plan, tmp_path / "again")
    plan_file = tmp_path / "none.json"
    plan.save(plan_file)
    argv = ["export", str(exported), "--plan", str(plan_file), "--out", str(tmp_path / "new")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "already an export" in err[-1]
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_an_export_that_does_not_load_back_is_not_written(tiny_model, tmp_path, monkeypatch):
    plan = make_preset("all-dynamic", build_tree(tiny_model.mods))
    real = writer.reader.unique_state

    def drops_a_key(mods):
        state = real(mods)
        state.pop(next(iter(state)))
        return state

    monkeypatch.setattr(writer.reader, "unique_state", drops_a_key)
    with pytest.raises(ExportError, match="did not load back, so nothing was written"):
        export_quantized(tiny_model, plan, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_size_ratio_says_larger_for_a_bigger_file():
    assert _size_ratio(100, 352) == "3.52x smaller"
    assert _size_ratio(200, 104) == "1.92x larger"


# --- the tool's own warnings reach the user; third-party noise does not ------------------------


def test_cli_shows_own_warnings_one_line_each(exported, tmp_path, capsys):
    import json
    import shutil

    copy = tmp_path / "old-torch"
    shutil.copytree(exported, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["versions"]["torch"] = "2.0.0"
    (copy / "metadata.json").write_text(json.dumps(meta))
    assert main(["tree", str(copy), "--depth", "1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "torch 2.0.0" in lines[0]


def test_user_warnings_pass_own_and_drop_third_party(caplog):
    import logging
    import warnings

    from speechquant.core.errors import SpeechquantWarning
    from speechquant.core.progress import user_warnings

    shown: list[str] = []
    with user_warnings(shown.append):
        warnings.warn("calibration item x skipped:\n  empty", SpeechquantWarning, stacklevel=1)
        warnings.warn("calibration item x skipped:\n  empty", SpeechquantWarning, stacklevel=1)
        warnings.warn("TypedStorage is deprecated", UserWarning, stacklevel=1)
        warnings.warn("`past_key_values` is deprecated", FutureWarning, stacklevel=1)
        assert not logging.getLogger("speechbrain").isEnabledFor(logging.INFO)
        assert not logging.getLogger("transformers").isEnabledFor(logging.WARNING)
    assert shown == ["calibration item x skipped: empty"]
