"""Export a quantized model as one folder, and load it back offline without running code from it.

An export folder (format ``speechquant-export``, version 1) holds::

    metadata.json        format + version, source, interface, torch/speechbrain/speechquant
                         versions, quantized engine, scheme settings, calibration utterance ids,
                         benchmark metrics (if any) and the sha256 of every other file
    plan.json            the plan (versioned JSON, see quantization.plan)
    quantized_state.pt   the quantized model's state_dict (modules held twice stored once)
    hyperparams.yaml     the model's hyperparameters, checked against an allowlist of classes,
                         with Hugging Face backbone sources pointing into backbone/ (and a
                         multilingual Whisper's prompt language as the model had it)
    backbone/<key>/      the backbone's config, feature-extractor and tokenizer files; no weights
    <name>.ckpt          files of non-module pretrainer loadables (the sentencepiece tokenizer)

:func:`load_quantized` rebuilds the model's skeleton from config alone with its parameters on
the meta device (no float weight is ever allocated), applies the plan's structure from those
shapes (``apply_plan(..., structure_only=True)``) and assigns the state strictly. It refuses, with one-line :class:`ExportError`\\ s, missing/tampered/unlisted files, an
unknown format version, an engine this machine lacks, a plan or state that does not fit the
skeleton, and any YAML tag or class outside the allowlist (see export.safety). Tensors are
read with ``torch.load(weights_only=True)``. A torch or speechbrain version that differs from the
exporter's is not an error: it is reported with ``warnings.warn(..., ExportVersionWarning)`` and
listed in ``model.metadata["load_warnings"]``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from speechquant.core.errors import ExportError, PlanError
from speechquant.core.export import reader, safety
from speechquant.core.export.safety import FORMAT, HPARAMS, METADATA, PLAN_FILE, STATE_FILE
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import ProgressCallback, report
from speechquant.core.quantization.apply import apply_plan, script_decoder_steps
from speechquant.core.quantization.tree import build_tree
from speechquant.core.quantization.validation import validate_plan


def is_export_folder(path: str | Path) -> bool:
    """True if ``path`` is a folder written by :func:`export_model` (even a damaged one)."""
    folder = Path(path)
    meta = folder / METADATA
    if not meta.is_file():
        return False
    if (folder / STATE_FILE).is_file():
        return True
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def looks_like_export(path: str | Path) -> bool:
    """True if ``path`` is a folder holding any file only an export has (even a damaged one)."""
    folder = Path(path)
    return folder.is_dir() and any(
        (folder / name).exists() for name in (METADATA, PLAN_FILE, STATE_FILE)
    )


def load_quantized(folder: str | Path, *, progress: ProgressCallback | None = None) -> LoadedModel:
    """Load an export folder: checked, rebuilt from config, quantized structure, strict state.

    Returns a :class:`LoadedModel` whose ``plan`` is the exported plan, ``source`` the folder and
    ``metadata`` the export's metadata (plus ``load_warnings``).
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ExportError(f"export folder {folder} does not exist; check the path")
    report(progress, 0, 3, f"checking {folder.name}")
    meta = reader.read_metadata(folder)
    reader.verify_files(folder, meta, skip={PLAN_FILE, HPARAMS, STATE_FILE})
    plan_bytes = reader.read_verified(folder, meta, PLAN_FILE)
    hparams_bytes = reader.read_verified(folder, meta, HPARAMS)
    load_warnings = reader.version_warnings(folder, meta)
    plan = reader.read_plan(folder, meta, plan_bytes)
    supported = supported_engines()
    if plan.settings.engine not in supported:
        raise ExportError(
            f"{folder / PLAN_FILE} needs the quantized engine '{plan.settings.engine}', which this "
            f"machine's torch lacks (it has {', '.join(e for e in supported if e != 'none')}); "
            "re-export the model with one of those engines"
        )
    origin = str(folder / HPARAMS)
    root = safety.compose_hyperparams(hparams_bytes.decode("utf-8", errors="replace"), origin)
    interface = reader.interface_of(root, folder, meta)
    report(progress, 1, 3, "rebuilding the model skeleton")
    skeleton = reader.build_skeleton(folder, root, meta, interface)
    try:
        validate_plan(plan, build_tree(skeleton.mods))
    except PlanError as exc:
        reason = str(exc).split("; ")[0]
        raise ExportError(
            f"{folder / PLAN_FILE} does not fit the model rebuilt from the export ({reason}); "
            "re-export the model"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = apply_plan(skeleton, plan, structure_only=True, validate=False)
    report(progress, 2, 3, "loading the quantized weights")
    reader.load_state(folder, model.mods, reader.read_state(folder, meta))
    model.mods.eval()
    if plan.settings.decoder_step == "scripted":
        script_decoder_steps(model)
    model.metadata = {**meta, "load_warnings": load_warnings}
    report(progress, 3, 3, f"loaded {folder.name}")
    return model


def supported_engines() -> list[str]:
    """The quantized engines this machine's torch supports."""
    return list(torch.backends.quantized.supported_engines)
