"""The SOURCE dispatcher: a built-in, a local folder, an export folder or a Hugging Face id."""

from __future__ import annotations

import os
import re
from pathlib import Path

from speechquant.core.errors import SourceError
from speechquant.core.export.loader import load_quantized, looks_like_export
from speechquant.core.model.demo_whisper import DEMO_WHISPERS, build_demo_whisper
from speechquant.core.model.loaded import LoadedModel, load_folder
from speechquant.core.model.whisper_language import set_language
from speechquant.core.paths import cache_dir
from speechquant.core.progress import ProgressCallback, report

BUILTINS = (
    *(spec.source for spec in DEMO_WHISPERS.values()),
    "replica:wav2vec2-tiny",
    "replica:wav2vec2-base",
    "replica:wav2vec2-large",
    "replica:crdnn-tiny",
    "replica:crdnn",
    "replica:conformer-tiny",
    "replica:conformer",
)
HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_builtin(source: str, progress: ProgressCallback | None = None) -> Path:
    """The model folder of a built-in SOURCE, built offline on first use."""
    if source.startswith("replica:wav2vec2-"):
        from speechquant.core.model.replicas import build_replica

        return build_replica(source.removeprefix("replica:wav2vec2-"), progress=progress)
    if source.startswith("replica:"):
        from speechquant.core.model.seq2seq_replicas import build_seq2seq_replica, seq2seq_names

        name = source.removeprefix("replica:")
        if name in seq2seq_names():
            return build_seq2seq_replica(name, progress=progress)
    if source.startswith("demo:") and source.removeprefix("demo:") in DEMO_WHISPERS:
        return build_demo_whisper(source.removeprefix("demo:"), progress=progress)
    raise SourceError(f"unknown built-in model '{source}'; use one of {', '.join(BUILTINS)}")


def open_model(
    source: str | Path,
    progress: ProgressCallback | None = None,
    *,
    trust_code: bool = False,
    language: str | None = None,
) -> LoadedModel:
    """Open any SOURCE: a built-in, a local folder, an export folder or a Hugging Face id.

    ``language`` (a code such as ``en`` or ``de``) sets the language token of a multilingual
    Whisper's decoder prompt (see :mod:`speechquant.core.model.whisper_language`); None keeps the
    model's own (``en`` for ``demo:whisper-base``). Other models refuse a language, except that
    an English-only Whisper accepts ``en`` and is left as it is.

    A folder's (or downloaded model's) hyperparams.yaml is checked against the allowlist of
    :mod:`speechquant.core.model.trust` before anything is built, unless ``trust_code`` is True.
    A folder that looks like an export (``metadata.json``, ``plan.json`` or
    ``quantized_state.pt``) is loaded only as an export: one that fails the export checks is
    refused, never opened as a plain folder.
    """
    text = str(source)
    report(progress, 0, 1, f"opening {text}")
    if text.startswith(("demo:", "replica:")):
        model = load_folder(resolve_builtin(text, progress), source=text)
    elif Path(text).exists():
        if looks_like_export(text):
            model = load_quantized(text, progress=progress)
        else:
            model = load_folder(Path(text), text, trust_code=trust_code)
    elif HF_ID.match(text) and not text.startswith((".", "/", "~")) and not _local_looking(text):
        model = _load_hf(text, trust_code)
    else:
        raise SourceError(
            f"model folder {text} does not exist; give a folder, an HF id (org/name) or a built-in "
            f"({', '.join(BUILTINS)})"
        )
    if language is not None:
        set_language(model.asr, language, text)
    report(progress, 1, 1, f"opened {text}")
    return model


def _local_looking(text: str) -> bool:
    """A missing ``a/b`` whose first part is an existing folder is a mistyped path, not an HF id."""
    return Path(text).parent.is_dir() and Path(text).parent != Path(".")


def _load_hf(repo_id: str, trust_code: bool) -> LoadedModel:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        raise SourceError(
            f"cannot download '{repo_id}' while offline (HF_HUB_OFFLINE is set); download it on a "
            "connected machine and pass its local folder as SOURCE"
        )
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, cache_dir=str(cache_dir() / "hf"))
    except Exception as exc:
        raise SourceError(
            f"cannot download '{repo_id}' from Hugging Face ({type(exc).__name__}); check the id and the "
            "network, or pass a local model folder"
        ) from None
    return load_folder(Path(folder), source=repo_id, trust_code=trust_code)
