"""A bench_peers.py worker for speechquant itself (runs in speechquant's environment).

Options: ``source=SOURCE`` (required), ``language=CODE`` (a Whisper's language; absent: the
model's own), ``plan=PLAN.json`` (absent: the float model), ``calib=CALIB.npz`` (waveforms for
static entries of the plan).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from protocol import Transcriber, serve  # noqa: E402

from speechquant.core.quantization.apply import apply_plan  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402
from speechquant.core.sources import open_model  # noqa: E402


def load(system: str, options: dict[str, str], threads: int) -> Transcriber:
    torch.set_num_threads(threads)
    model = open_model(options["source"], language=options.get("language"))
    if "plan" in options:
        calibration = None
        if "calib" in options:
            calib = np.load(options["calib"])
            calibration = [torch.from_numpy(calib[key]) for key in calib.files]
        model = apply_plan(model, Plan.load(options["plan"]), calibration)

    def transcribe(wav: np.ndarray) -> str:
        return model.transcribe(torch.from_numpy(wav))

    return transcribe


if __name__ == "__main__":
    serve(load)
