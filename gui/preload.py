"""Import the model-loading stack in the background right after the window shows.

The first model load imports speechbrain and transformers: a few seconds, and millions of new
objects, so a full garbage collection (which holds the GIL) soon follows inside the load and
freezes the event loop for ~0.3 s. :func:`start_preimport` does those imports in a plain thread
while the user is still looking at the empty window, then moves everything imported so far into
the collector's permanent generation (``gc.freeze``), so later full collections skip it. A load
job calls :func:`wait_preimport` first, so the two never import the same modules at once.
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading

log = logging.getLogger(__name__)

PREIMPORTS = (
    "speechbrain.inference.ASR",
    "speechbrain.integrations.huggingface",
    "transformers.models.wav2vec2.modeling_wav2vec2",
    "hyperpyyaml",
    "sentencepiece",
)
"""What ``core.sources.open_model`` imports on first use (module names may vary by version)."""

_done = threading.Event()
_done.set()  # nothing pending until start_preimport runs
_thread: threading.Thread | None = None
_start_lock = threading.Lock()


def _run(names: tuple[str, ...]) -> None:
    try:
        for name in names:
            gc.freeze()  # modules live for the whole session: no full collection re-scans them
            try:
                importlib.import_module(name)
            except Exception as exc:  # best effort: a real load reports real problems
                log.debug("pre-import of %s failed: %s", name, exc)
        gc.freeze()
    finally:
        _done.set()


def start_preimport(names: tuple[str, ...] = PREIMPORTS) -> threading.Thread:
    """Start the background imports once per process; returns the (possibly finished) thread."""
    global _thread
    with _start_lock:
        if _thread is None:
            _done.clear()
            _thread = threading.Thread(
                target=_run, args=(names,), name="speechquant-preimport", daemon=True
            )
            _thread.start()
        return _thread


def wait_preimport(timeout: float | None = None) -> bool:
    """Block until the background imports are done (at once if none were started)."""
    return _done.wait(timeout)
