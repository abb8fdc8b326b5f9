"""SpeechBrain Hugging Face lobes that build their backbone from ``config.json`` alone.

Loading an export names these instead of SpeechBrain's own lobes: the backbone is created with
``from_config`` (random initialization, no weight file read), and the export's quantized
state_dict then fills every weight. Class names match SpeechBrain's so module trees look the same.
"""

from __future__ import annotations

from typing import Any

from speechbrain.integrations.huggingface import wav2vec2 as _wav2vec2
from speechbrain.integrations.huggingface import whisper as _whisper


def _from_config(self: Any, source: Any, save_path: Any, cache_dir: Any, **kwargs: Any) -> None:
    self.model = self.auto_class.from_config(self.config)


class Wav2Vec2(_wav2vec2.Wav2Vec2):  # type: ignore[misc]
    """``speechbrain...wav2vec2.Wav2Vec2`` whose backbone is built from its config only."""

    _from_pretrained = _from_config


class Whisper(_whisper.Whisper):  # type: ignore[misc]
    """``speechbrain...whisper.Whisper`` whose backbone is built from its config only."""

    _from_pretrained = _from_config

    def load_tokenizer(self, source: Any, **kwargs: Any) -> None:
        """SpeechBrain's tokenizer, without transformers' Python copy of its vocabulary.

        transformers' Whisper tokenizer keeps the BPE vocabulary and merges as Python objects
        (about 23 MB) beside the Rust tokenizer built from them, only for ``save_vocabulary``;
        an export's tokenizer only encodes prompts and decodes transcripts, so they are dropped
        (saving it fails loudly instead).
        """
        super().load_tokenizer(source, **kwargs)
        for name in ("_vocab", "_merges"):
            if name in vars(self.tokenizer):
                delattr(self.tokenizer, name)
