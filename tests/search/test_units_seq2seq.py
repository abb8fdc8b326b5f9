"""Sensitivity units of the encoder-decoder replicas, and a short sensitivity run on one."""

from __future__ import annotations

import soundfile as sf

from speechquant.core.data.datasets import open_dataset
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.quantization.tree import build_tree
from speechquant.core.search.sensitivity import SensitivitySettings, run_sensitivity
from speechquant.core.search.units import default_units, merge_families

from ..helpers import fixed_waves


def test_default_units_of_the_crdnn(crdnn_tiny):
    units = default_units(crdnn_tiny.mods)
    assert [u.name for u in units] == [
        "encoder.model.CNN.block_0",
        "encoder.model.CNN.block_1",
        "encoder.model.RNN",
        "encoder.model.DNN.block_0",
        "encoder.model.DNN.block_1",
        "decoder.emb",
        "decoder.dec",
        "decoder.fc",
        "lm_model.embedding",
        "lm_model.rnn",
        "lm_model.dnn",
        "lm_model.out",
    ]
    by_name = {u.name: u for u in units}
    assert "static" not in by_name["encoder.model.RNN"].schemes
    assert "dynamic" in by_name["encoder.model.RNN"].schemes
    assert "dynamic" in by_name["decoder.dec"].schemes
    assert by_name["encoder.model.CNN.block_0"].family == "encoder.model.CNN.{block_0,block_1}"


def test_default_units_of_the_conformer(conformer_tiny):
    units = default_units(conformer_tiny.mods)
    names = [u.name for u in units]
    assert names[0] == "pre_transformer"
    assert "transformer.encoder.layers.0" in names and "transformer.encoder.layers.1" in names
    assert "transformer.decoder.layers.0" in names and "transformer.decoder.layers.1" in names
    assert "asr_model.2" in names and "asr_model.3" in names  # seq_lin and ctc_lin
    assert "lm_model.encoder.layers.0" in names
    paths = [p for u in units for p in u.paths]
    assert len(paths) == len(set(paths))
    merged = merge_families(units, build_tree(conformer_tiny.mods))
    assert "transformer.encoder.layers.0-1" in [u.name for u in merged]


def test_sensitivity_runs_on_the_crdnn(crdnn_tiny, tmp_path):
    for i, wave in enumerate(fixed_waves(3, seconds=1.0, seed=11)):
        sf.write(tmp_path / f"utt{i}.wav", wave.numpy(), 16000)
        (tmp_path / f"utt{i}.txt").write_text(crdnn_tiny.transcribe(wave) or "x")
    units = [
        u for u in default_units(crdnn_tiny.mods) if u.name in ("encoder.model.RNN", "lm_model.rnn")
    ]
    result = run_sensitivity(
        crdnn_tiny,
        open_dataset(tmp_path),
        None,
        units=units,
        settings=SensitivitySettings(schemes=("dynamic",), leave_one_out=False),
        bench=BenchSettings(warmup=0, threads=1, calib_n=1),
    )
    assert {r.unit.name for r in result.rows} == {"encoder.model.RNN", "lm_model.rnn"}
    assert all(r.single.bytes_saved > 0 for r in result.rows)
