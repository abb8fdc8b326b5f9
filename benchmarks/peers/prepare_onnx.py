"""Export and quantize the ONNX Runtime peers (runs in the peers virtualenv).

Usage:
  prepare_onnx.py whisper HF_DIR OUT_DIR
      optimum's Whisper export (encoder + merged decoder with past), then the dynamic int8
      quantization of ``optimum-cli onnxruntime quantize --avx2`` into OUT_DIR/int8.
  prepare_onnx.py quantize MODEL.onnx OUT.onnx
      the same ``--avx2`` dynamic int8 quantization of one ONNX file (the wav2vec2 encoder).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from optimum.onnxruntime import ORTQuantizer
from optimum.onnxruntime.configuration import AutoQuantizationConfig

WHISPER_FILES = ("encoder_model.onnx", "decoder_model_merged.onnx")


def avx2_config() -> AutoQuantizationConfig:
    """What ``optimum-cli onnxruntime quantize --avx2`` uses (dynamic, per-tensor)."""
    return AutoQuantizationConfig.avx2(is_static=False, per_channel=False)


def export_whisper(hf_dir: Path, out: Path) -> None:
    fp32 = out / "fp32"
    if not (fp32 / WHISPER_FILES[1]).is_file():
        cli = Path(sys.executable).with_name("optimum-cli")
        task = "automatic-speech-recognition-with-past"
        subprocess.run(
            [str(cli), "export", "onnx", "--model", str(hf_dir), "--task", task, str(fp32)],
            check=True,
        )
    int8 = out / "int8"
    if (int8 / WHISPER_FILES[1].replace(".onnx", "_quantized.onnx")).is_file():
        return
    int8.mkdir(parents=True, exist_ok=True)
    for name in WHISPER_FILES:
        quantizer = ORTQuantizer.from_pretrained(fp32, file_name=name)
        quantizer.quantize(save_dir=int8, quantization_config=avx2_config())
    for extra in fp32.iterdir():
        if extra.suffix != ".onnx" and extra.is_file():
            shutil.copy2(extra, int8 / extra.name)


def quantize_file(model: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        quantizer = ORTQuantizer.from_pretrained(model.parent, file_name=model.name)
        quantizer.quantize(save_dir=tmp, quantization_config=avx2_config())
        produced = Path(tmp) / model.name.replace(".onnx", "_quantized.onnx")
        produced.replace(out)


def main() -> None:
    command, first, second = sys.argv[1:4]
    if command == "whisper":
        export_whisper(Path(first), Path(second))
    elif command == "quantize":
        quantize_file(Path(first), Path(second))
    else:
        raise SystemExit(f"unknown command {command!r}; use whisper or quantize")


if __name__ == "__main__":
    main()
