"""Export and quantize the ONNX Runtime peers (runs in the peers virtualenv).

Usage:
  prepare_onnx.py whisper HF_DIR OUT_DIR
      optimum's Whisper export (encoder + merged decoder with past), then the dynamic int8
      quantization of ``optimum-cli onnxruntime quantize --avx2`` into OUT_DIR/int8.
  prepare_onnx.py quantize MODEL.onnx OUT.onnx [avx2|avx512_vnni]
      the same dynamic int8 quantization of one ONNX file (the wav2vec2 encoder): ``--avx2``
      (uint8 weights) by default, or ``--avx512_vnni`` (int8 weights, for CPUs with VNNI).
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


def avx512_vnni_config() -> AutoQuantizationConfig:
    """What ``optimum-cli onnxruntime quantize --avx512_vnni`` uses (dynamic, per-tensor)."""
    return AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)


CONFIGS = {"avx2": avx2_config, "avx512_vnni": avx512_vnni_config}


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


def quantize_file(model: Path, out: Path, config: str = "avx2") -> None:
    if config not in CONFIGS:
        raise SystemExit(f"unknown quantization config {config!r}; use one of {', '.join(CONFIGS)}")
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        quantizer = ORTQuantizer.from_pretrained(model.parent, file_name=model.name)
        quantizer.quantize(save_dir=tmp, quantization_config=CONFIGS[config]())
        produced = Path(tmp) / model.name.replace(".onnx", "_quantized.onnx")
        produced.replace(out)


def main() -> None:
    command, first, second, *rest = sys.argv[1:5]
    if command == "whisper":
        export_whisper(Path(first), Path(second))
    elif command == "quantize":
        quantize_file(Path(first), Path(second), *rest)
    else:
        raise SystemExit(f"unknown command {command!r}; use whisper or quantize")


if __name__ == "__main__":
    main()
