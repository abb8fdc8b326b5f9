"""speechquant core: open SpeechBrain ASR models, plan and apply quantization, measure it.

The public Python API is this package's names; each is imported on first use, so importing
``speechquant.core`` stays cheap (no torch, no SpeechBrain until a name is touched).

====================  =====================================================================
``open_model``        any SOURCE (built-in, folder, export, Hugging Face id) as a LoadedModel
``open_dataset``      any DATA (manifest, LibriSpeech tree, sidecar folder, ``demo``)
``build_tree``        the module tree with the schemes that apply to each node
``make_preset``       a named preset plan for a tree
``apply_plan``        a quantized variant of a model (the float model is left as it was)
``benchmark``         WER and RTF of one model on a dataset
``run_sensitivity``   per-unit, per-scheme sensitivity analysis
``run_search``        a budgeted plan search
``export_model``      write a quantized model as an export folder
``load_quantized``    load an export folder back
====================  =====================================================================

``folder_untrusted_tags`` lists the tags of a model folder's hyperparams.yaml outside the
allowlist (what ``open_model(..., trust_code=True)`` would run).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "open_model": "speechquant.core.sources",
    "open_dataset": "speechquant.core.data.datasets",
    "build_tree": "speechquant.core.quantization.tree",
    "make_preset": "speechquant.core.quantization.presets",
    "apply_plan": "speechquant.core.quantization.apply",
    "benchmark": "speechquant.core.evaluation.bench",
    "run_sensitivity": "speechquant.core.search.sensitivity",
    "run_search": "speechquant.core.search.plan_search",
    "export_model": "speechquant.core.export.writer",
    "load_quantized": "speechquant.core.export.loader",
    "folder_untrusted_tags": "speechquant.core.model.trust",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import the module behind a public name on first use."""
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'speechquant.core' has no attribute '{name}'") from None
    return getattr(import_module(module), name)
