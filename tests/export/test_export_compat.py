"""Export folders written by earlier speechquant releases keep loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from speechquant.core.export.loader import load_quantized
from speechquant.core.quantization.tree import build_tree

DATA = Path(__file__).parent / "data"


def test_export_written_before_the_core_reorganisation_loads_and_matches(tmp_path):
    """A tutorial-plan export of the tiny replica, written by the flat-module layout of core/.

    The probe tensor is the quantized model's encoder output on a fixed wave, saved by the
    exporting process on another machine of this project. The reloaded model must reproduce it up to the
    rounding in which CPUs' int8 kernels differ (AVX2, AVX-512 VNNI and AMX paths accumulate and
    requantize differently: up to 0.2 % of an output here), far below what a weight or scale
    loaded wrong would change.
    """
    folder = tmp_path / "export"
    shutil.copytree(DATA / "export-v1-tiny-tutorial", folder)
    model = load_quantized(folder)
    assert model.plan is not None and model.plan.name == "tutorial"
    kinds = {node.class_name for node in build_tree(model.mods).nodes()}
    assert "StaticQuantWrapper" in kinds
    probe = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = model.asr.encode_batch(probe.unsqueeze(0), torch.tensor([1.0]))
    expected = torch.load(DATA / "export-v1-tiny-tutorial.probe.pt", weights_only=True)
    torch.testing.assert_close(out, expected, rtol=1e-2, atol=1e-2)
