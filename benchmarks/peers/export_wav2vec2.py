"""Export a wav2vec2 + CTC EncoderASR's encoder (backbone, enc, ctc_lin, log-softmax) to ONNX.

Usage: python export_wav2vec2.py SOURCE OUT.onnx PEERS_SITE_PACKAGES

Runs in speechquant's environment (the model is loaded the way speechquant loads it) with the
``onnx`` package borrowed from the peers virtualenv: its site-packages go to the *end* of
``sys.path``, so only what speechquant's environment lacks is taken from there.
"""

from __future__ import annotations

import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from speechquant.core.sources import open_model  # noqa: E402


def _layer_norm(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``F.layer_norm`` without affine over ``dims``, written so the ONNX trace keeps shapes dynamic."""
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + 1e-5)


class CtcEncoder(nn.Module):
    """SpeechBrain's ``encoder`` of the wav2vec2 EncoderASR for one unpadded waveform."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        w2v = self.encoder.wav2vec2
        if w2v.normalize_wav:
            wav = _layer_norm(wav, (1,))
        out = w2v.model(wav).last_hidden_state
        if w2v.output_norm:
            out = _layer_norm(out, (1, 2))
        out = self.encoder.enc(out)
        return self.encoder.log_softmax(self.encoder.ctc_lin(out))


def export(source: str, out: str) -> float:
    """Write ``out``; return the largest difference from SpeechBrain's own encoder on 2.5 s."""
    model = open_model(source)
    wrapper = CtcEncoder(model.mods.encoder).eval()
    example = torch.randn(1, 40000)
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (example,),
            out,
            dynamo=False,
            input_names=["wav"],
            output_names=["logp"],
            dynamic_axes={"wav": {1: "samples"}, "logp": {1: "frames"}},
            opset_version=17,
        )
        mine = wrapper(example)
        theirs = model.mods.encoder(example, torch.ones(1))
    return float((mine - theirs).abs().max())


def main() -> None:
    source, out, peers_site = sys.argv[1:4]
    sys.path.append(peers_site)
    difference = export(source, out)
    print(f"exported {source} to {out}; max |logp - SpeechBrain's| = {difference:.2e}")
    if difference > 1e-3:
        raise SystemExit(f"the exported encoder differs from SpeechBrain's by {difference:.2e}")


if __name__ == "__main__":
    main()
