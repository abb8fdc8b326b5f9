"""The ``speechquant-gui`` entry point: --help and --screenshot."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from speechquant.gui.app import main


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "SOURCE" in out and "--screenshot" in out


def test_screenshot_writes_a_png_of_the_loaded_window(qapp, tmp_path, capsys):
    out = tmp_path / "shots" / "main.png"
    assert main(["replica:wav2vec2-tiny", "--screenshot", str(out)]) == 0
    image = QImage(str(out))
    assert out.stat().st_size > 10_000
    assert image.width() >= 1000 and image.height() >= 600


def test_screenshot_of_a_bad_source_fails_with_one_line(qapp, tmp_path, capsys):
    out = tmp_path / "never.png"
    assert main([str(tmp_path / "no-model"), "--screenshot", str(out)]) == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err


def test_screenshot_needs_a_source(capsys):
    assert main(["--screenshot", "x.png"]) == 2
    assert "needs a SOURCE" in capsys.readouterr().err


def test_the_screenshot_script_writes_the_three_pngs(qapp, tmp_path, tiny_data):
    from speechquant.gui import screenshots

    args = [str(tmp_path), "--results-source", "replica:wav2vec2-tiny", "--data", str(tiny_data)]
    assert screenshots.main([*args, "--limit", "2"]) == 0
    for name in ("main-window.png", "results.png", "utterances.png"):
        image = QImage(str(tmp_path / name))
        assert image.width() >= 1000 and image.height() >= 600, name


def test_the_screenshot_script_stops_on_a_job_that_outlasts_its_timeout(qapp, qtbot, tmp_path):
    from speechquant.gui import screenshots

    shot = screenshots.Shooter(tmp_path, timeout_s=0.0)
    try:
        shot.window.open_source("replica:wav2vec2-tiny")
        assert shot.window.job is not None
        with pytest.raises(SystemExit, match="outlasted 0 s; pass a larger --timeout"):
            shot.wait_job()
        qtbot.waitUntil(lambda: shot.window.job is None, timeout=60_000)
    finally:
        shot.window.close()


def test_the_screenshot_script_renders_only_the_shots_asked_for(qapp, tmp_path, tiny_data):
    from speechquant.gui import screenshots

    args = [str(tmp_path), "--results-source", "replica:wav2vec2-tiny", "--data", str(tiny_data)]
    assert screenshots.main([*args, "--only", "main-window"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["main-window.png"]


@pytest.mark.parametrize("given_data", [True, False], ids=["--data", "shared speech set"])
def test_the_screenshot_script_hands_its_data_to_the_sensitivity_job(
    qapp, tmp_path, tiny_data, monkeypatch, given_data
):
    from speechquant.core.errors import SpeechquantError
    from speechquant.gui import screenshots, search_action

    shared = tmp_path / "shared-speech"
    shared.mkdir()
    rows = [f"utt{i},1.0,{tiny_data / f'utt{i}.wav'},WORD" for i in range(4)]
    (shared / "manifest.csv").write_text("ID,duration,wav,wrd\n" + "\n".join(rows) + "\n")
    monkeypatch.setenv("SPEECHQUANT_SPEECH", str(shared))
    handed: list[tuple[str, str, int | None, tuple[str, ...]]] = []

    def recording_job(model, data, bench, settings, history, cluster=None):
        handed.append((model.source, data, bench.limit, tuple(settings.schemes)))

        def job(progress, cancel):
            raise SpeechquantError("sensitivity stopped before measuring")

        return job

    monkeypatch.setattr(search_action, "sensitivity_job", recording_job)
    args = [str(tmp_path / "shots"), "--only", "sensitivity", "--sensitivity-source",
            "replica:wav2vec2-tiny", "--sensitivity-schemes", "dynamic", "bf16"]  # fmt: skip
    args += ["--data", str(tiny_data), "--limit", "8"] if given_data else []
    with pytest.raises(SystemExit, match="error: sensitivity stopped before measuring"):
        screenshots.main(args)
    data, limit = (str(tiny_data), 8) if given_data else (str(shared / "manifest.csv"), 6)
    assert handed == [("replica:wav2vec2-tiny", data, limit, ("dynamic", "bf16"))]
    assert not (tmp_path / "shots" / "sensitivity.png").exists()
