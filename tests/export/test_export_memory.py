"""Loading an export never materializes the float weights it replaces."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
from torch import nn

from speechquant.core.export import meta, reader
from speechquant.core.export.loader import load_quantized
from speechquant.core.export.safety import STATE_FILE
from speechquant.core.export.writer import export_model
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.tree import build_tree

from ..helpers import file_is_mapped, fixed_waves


@pytest.fixture(scope="module")
def dynamic_export(tiny_model, tmp_path_factory):
    plan = make_preset("all-dynamic", build_tree(tiny_model.mods))
    quantized = apply_plan(tiny_model, plan)
    return quantized, export_model(quantized, tmp_path_factory.mktemp("mem") / "export")


def test_skeleton_has_no_weight_storage_and_state_is_assigned_not_copied(
    dynamic_export, monkeypatch
):
    quantized, folder = dynamic_export
    seen: dict[str, object] = {}
    original = meta.assign_state

    def spy(mods: nn.Module, state):
        seen["float_on_cpu"] = [n for n, p in mods.named_parameters() if not p.is_meta]
        seen["ptrs"] = {k: v.data_ptr() for k, v in state.items() if isinstance(v, torch.Tensor)}
        return original(mods, state)

    monkeypatch.setattr(reader, "assign_state", spy)
    loaded = load_quantized(folder)
    assert seen["float_on_cpu"] == []
    params = dict(loaded.mods.named_parameters())
    assert params, "the replica keeps float layers (layer norms, convs)"
    ptrs = seen["ptrs"]
    assert isinstance(ptrs, dict)
    assert all(params[name].data_ptr() == ptrs[name] for name in params)
    assert meta.meta_tensors(loaded.mods) == []
    for wav in fixed_waves(2, 1.0, seed=5):
        assert torch.equal(quantized.encode(wav), loaded.encode(wav))


@pytest.mark.parametrize("copy_kept", [False, True], ids=["rule", "kept-copied"])
def test_state_is_memory_mapped_never_read_whole_and_unmapped_when_kept_tensors_are_copied(
    dynamic_export, monkeypatch, copy_kept
):
    quantized, folder = dynamic_export
    state_file = folder / STATE_FILE
    read_bytes = Path.read_bytes

    def read_whole(self: Path) -> bytes:
        assert self.name != STATE_FILE, "the state file was read into memory whole"
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_whole)
    if copy_kept:
        monkeypatch.setattr(reader, "release_mapping", reader.copy_kept_tensors)
    seen: dict[str, bool] = {}
    original = reader.load_state

    def spy(folder_: Path, mods: nn.Module, state) -> None:
        seen["mapped while loading"] = file_is_mapped(state_file)
        original(folder_, mods, state)

    monkeypatch.setattr(reader, "load_state", spy)
    gc.collect()
    assert not file_is_mapped(state_file)
    loaded = load_quantized(folder)
    gc.collect()
    assert seen["mapped while loading"]
    # The replica's float layers outweigh its int8 ones, so by the rule they stay mapped; once
    # copied, nothing the model holds (packed biases included) may point into the file.
    assert file_is_mapped(state_file) is not copy_kept
    for wav in fixed_waves(2, 1.0, seed=8):
        assert torch.equal(quantized.encode(wav), loaded.encode(wav))
    del loaded
    gc.collect()
    assert not file_is_mapped(state_file)


def test_kept_tensors_leave_the_mapping_only_when_they_are_the_smaller_part():
    weight = torch.quantize_per_tensor(torch.randn(64, 64), 0.1, 0, torch.qint8)
    bias = torch.randn(4)
    mostly_quantized = {"w": (weight, bias), "norm": torch.ones(4)}
    copied = reader.release_mapping(mostly_quantized)
    assert copied["w"][0] is weight
    assert copied["w"][1] is not bias and torch.equal(copied["w"][1], bias)
    assert copied["norm"].data_ptr() != mostly_quantized["norm"].data_ptr()
    mostly_float = {"w": (weight, bias), "norm": torch.ones(64, 64)}
    assert reader.release_mapping(mostly_float) is mostly_float


def test_dynamic_layers_are_built_from_shapes_without_quantizing_float_weights(
    dynamic_export, monkeypatch
):
    quantized, folder = dynamic_export

    def refuse(*args, **kwargs):
        raise AssertionError("quantize_dynamic ran on float weights while loading an export")

    monkeypatch.setattr("torch.ao.quantization.quantize_dynamic", refuse)
    loaded = load_quantized(folder)
    wav = fixed_waves(1, 1.0, seed=6)[0]
    assert loaded.transcribe(wav) == quantized.transcribe(wav)


def test_parameters_on_meta_keeps_buffers_real_and_infers_shapes():
    from speechbrain.nnet.containers import Sequential
    from speechbrain.nnet.linear import Linear

    with meta.parameters_on_meta():
        net = Sequential(input_shape=[None, None, 8])
        net.append(Linear, n_neurons=16, layer_name="lin")
        norm = nn.BatchNorm1d(16)
    assert all(p.is_meta for p in (*net.parameters(), *norm.parameters()))
    assert not any(b.is_meta for b in norm.buffers())
    assert nn.Linear(2, 2).weight.device.type == "cpu"


def test_tied_weights_stay_tied_after_assignment():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(5, 3)
            self.out = nn.Linear(3, 5, bias=False)
            self.out.weight = self.emb.weight

    state = Tied().state_dict()
    with meta.parameters_on_meta():
        model = Tied()
    result = meta.assign_state(model, state)
    assert not result.missing_keys and not result.unexpected_keys
    assert model.out.weight is model.emb.weight and not model.emb.weight.is_meta


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Linear(6, 4),
        lambda: nn.LSTM(6, 4, num_layers=2, bidirectional=True, batch_first=True),
        lambda: nn.GRU(6, 4, batch_first=True),
        lambda: nn.LSTMCell(6, 4),
        lambda: nn.GRUCell(6, 4),
        lambda: nn.RNNCell(6, 4),
    ],
)
def test_dynamic_leaf_from_meta_shapes_loads_the_quantized_state(make):
    from speechquant.core.quantization.schemes.dynamic import quantize_dynamic_leaf
    from speechquant.core.quantization.settings import QuantSettings

    torch.manual_seed(0)
    settings = QuantSettings()
    reference = quantize_dynamic_leaf(make(), settings)
    with meta.parameters_on_meta():
        skeleton = make()
    rebuilt = quantize_dynamic_leaf(skeleton, settings)
    assert type(rebuilt) is type(reference)
    rebuilt.load_state_dict(reference.state_dict())
    x = torch.randn(3, 6) if not isinstance(skeleton, nn.RNNBase) else torch.randn(1, 3, 6)
    out_ref, out_new = reference(x), rebuilt(x)
    if isinstance(out_ref, tuple):
        out_ref, out_new = out_ref[0], out_new[0]
    assert torch.equal(out_ref, out_new)


def test_dynamic_linear_from_meta_shapes_packs_no_full_size_placeholder():
    from speechquant.core.quantization.schemes.dynamic import quantize_dynamic_leaf
    from speechquant.core.quantization.settings import QuantSettings

    with meta.parameters_on_meta():
        skeleton = nn.Linear(384, 1536)
    rebuilt = quantize_dynamic_leaf(skeleton, QuantSettings())
    weight, bias = rebuilt._packed_params._weight_bias()
    assert weight.shape == (1, 1) and bias is not None and bias.shape == (1,)
    assert (rebuilt.in_features, rebuilt.out_features) == (384, 1536)


def test_a_state_without_a_packed_weight_is_refused_not_left_a_placeholder(
    dynamic_export, tmp_path
):
    import hashlib
    import json
    import shutil

    from speechquant.core.errors import ExportError

    _, folder = dynamic_export
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    state = torch.load(copy / STATE_FILE, weights_only=True)
    packed = next(k for k in state if k.endswith("_packed_params._packed_params"))
    del state[packed]
    torch.save(state, copy / STATE_FILE)
    meta_file = copy / "metadata.json"
    metadata = json.loads(meta_file.read_text())
    metadata["files"][STATE_FILE] = hashlib.sha256((copy / STATE_FILE).read_bytes()).hexdigest()
    meta_file.write_text(json.dumps(metadata))
    with pytest.raises(ExportError, match="does not fit the model built from the plan") as info:
        load_quantized(copy)
    assert packed in str(info.value)
