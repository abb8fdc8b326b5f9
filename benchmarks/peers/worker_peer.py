"""A bench_peers.py worker for the peer runtimes (runs in the peers virtualenv).

Systems and their options:

``faster-whisper``
    ``model=CT2_DIR compute_type=float32|int8 language=CODE``; greedy (beam 1, temperature 0
    only, no fallback), no timestamps, no VAD, no conditioning on previous text.
``ort-whisper``
    ``model=ONNX_DIR encoder=FILE [language=CODE]``; optimum's ``ORTModelForSpeechSeq2Seq`` with
    the folder's one merged decoder (with past key/values), greedy ``generate``; ``language``
    (multilingual models only) puts that language and ``transcribe`` in the prompt.
``ort-ctc``
    ``model=FILE.onnx``; one session from waveform to log-probabilities, CTC greedy
    (argmax, collapse repeats, drop blank 0); returns the token ids as text.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from protocol import Transcriber, serve  # noqa: E402


def _session_options(threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def faster_whisper(options: dict[str, str], threads: int) -> Transcriber:
    from faster_whisper import WhisperModel

    model = WhisperModel(
        options["model"],
        device="cpu",
        compute_type=options["compute_type"],
        cpu_threads=threads,
        num_workers=1,
    )
    language = options["language"]
    print(f"faster-whisper runs as {model.model.compute_type}", file=sys.stderr)

    def transcribe(wav: np.ndarray) -> str:
        segments, _ = model.transcribe(
            wav,
            language=language,
            beam_size=1,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments)

    return transcribe


def ort_whisper(options: dict[str, str], threads: int) -> Transcriber:
    import torch
    from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
    from transformers import WhisperProcessor

    torch.set_num_threads(threads)
    model = ORTModelForSpeechSeq2Seq.from_pretrained(
        options["model"],
        encoder_file_name=options["encoder"],
        use_merged=True,
        session_options=_session_options(threads),
        provider="CPUExecutionProvider",
    )
    processor = WhisperProcessor.from_pretrained(options["model"])
    prompt = (
        {"language": options["language"], "task": "transcribe"} if "language" in options else {}
    )

    def transcribe(wav: np.ndarray) -> str:
        features = processor(wav, sampling_rate=16000, return_tensors="pt").input_features
        ids = model.generate(input_features=features, num_beams=1, do_sample=False, **prompt)
        return str(processor.batch_decode(ids, skip_special_tokens=True)[0]).strip()

    return transcribe


def ort_ctc(options: dict[str, str], threads: int) -> Transcriber:
    import onnxruntime as ort

    session = ort.InferenceSession(
        options["model"], _session_options(threads), providers=["CPUExecutionProvider"]
    )

    def transcribe(wav: np.ndarray) -> str:
        logp = session.run(None, {"wav": wav[None, :].astype(np.float32)})[0][0]
        best = logp.argmax(-1)
        keep = np.ones_like(best, dtype=bool)
        keep[1:] = best[1:] != best[:-1]
        return " ".join(str(t) for t in best[keep & (best != 0)])

    return transcribe


LOADERS = {"faster-whisper": faster_whisper, "ort-whisper": ort_whisper, "ort-ctc": ort_ctc}


def load(system: str, options: dict[str, str], threads: int) -> Transcriber:
    kind = options.pop("kind")
    return LOADERS[kind](options, threads)


if __name__ == "__main__":
    serve(load)
