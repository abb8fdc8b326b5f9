"""The trust model for local SpeechBrain folders: what a hyperparams.yaml may build by default.

SpeechBrain's HyperPyYAML constructs any class a ``!new:``/``!name:`` tag names, calls any
function an ``!apply:`` tag names, imports any module a ``!module:`` tag names, includes other
files (``!include:``) and unpickles ``!!python/`` objects (also inside its ``( ... )`` tuple
literals). So a model folder is code. Before anything is built, the file is composed with
PyYAML's *safe* composer (which builds nothing) and every tag is checked against
:data:`ALLOWED_PREFIXES`, :data:`ALLOWED_NAMES` and :data:`ALLOWED_APPLY`; only the checked node
graph, re-serialized, is handed to HyperPyYAML. A folder whose file names anything else is
refused unless the caller trusts it (``trust_code=True``, ``--trust-code``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from speechquant.core.errors import SourceError

#: Module prefixes whose classes (and functions) ``!new:``/``!name:`` may name: SpeechBrain's
#: model building blocks, decoders, tokenizers, feature extraction and its Hugging Face lobes.
ALLOWED_PREFIXES = (
    "speechbrain.lobes.",
    "speechbrain.nnet.",
    "speechbrain.decoders.",
    "speechbrain.tokenizers.",
    "speechbrain.processing.features.",
    "speechbrain.integrations.huggingface.",
    "speechbrain.dataio.encoder.",
    "speechbrain.augment.",
)
#: Modules under those prefixes that unpickle files, load fairseq checkpoints or pass
#: ``trust_remote_code=True`` to Hugging Face.
DENIED_PREFIXES = (
    "speechbrain.lobes.models.MSTacotron2",
    "speechbrain.lobes.models.fairseq_wav2vec",
    "speechbrain.integrations.huggingface.mert",
)
#: Single names allowed outside the prefixes.
ALLOWED_NAMES = frozenset(
    {
        "speechbrain.utils.parameter_transfer.Pretrainer",
        "sentencepiece.SentencePieceProcessor",
    }
)
#: Functions ``!apply:`` may call (training files seed the RNG this way).
ALLOWED_APPLY = frozenset({"torch.manual_seed"})
_CORE = "tag:yaml.org,2002:"
_DATA_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}
_PLAIN_TAGS = {"!ref", "!copy", "!PLACEHOLDER", "!tuple"}
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_TUPLE = re.compile(r"^\(.*\)$")
_TUPLE_SAFE = re.compile(r"^\([\w\s.,+-]*\)$")


@dataclass(frozen=True)
class UntrustedTag:
    """One tag of a hyperparams.yaml outside the allowlist, and where it is (1-based line)."""

    tag: str
    line: int
    reason: str

    def describe(self) -> str:
        return f"line {self.line}: {self.tag} ({self.reason})"


def _torch_nn_allowed(path: str) -> bool:
    """``torch.nn.X`` naming an ``nn.Module`` subclass, or a ``torch.nn.functional`` function."""
    import torch
    from torch import nn

    parts = path.split(".")
    if len(parts) == 3 and parts[:2] == ["torch", "nn"]:
        obj = getattr(nn, parts[2], None)
        return inspect.isclass(obj) and issubclass(obj, nn.Module)
    if len(parts) == 4 and parts[:3] == ["torch", "nn", "functional"]:
        return inspect.isfunction(getattr(torch.nn.functional, parts[3], None))
    return False


def _resolves(path: str) -> bool:
    """Whether an allowed-prefix path names a class or function defined under an allowed prefix
    (a name a module merely imported, such as ``subprocess.run``, does not count)."""
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    obj = getattr(module, attr, None)
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return False
    home = f"{getattr(obj, '__module__', '')}."
    return home.startswith(ALLOWED_PREFIXES) and not home.startswith(
        tuple(d + "." for d in DENIED_PREFIXES)
    )


def callable_allowed(path: str) -> bool:
    """Whether ``!new:``/``!name:`` may name ``path`` without trusting the folder."""
    if not _DOTTED.fullmatch(path):
        return False
    if path in ALLOWED_NAMES:
        return True
    if path.startswith("torch.nn."):
        return _torch_nn_allowed(path)
    if any(path == d or path.startswith(d + ".") for d in DENIED_PREFIXES):
        return False
    return path.startswith(ALLOWED_PREFIXES) and _resolves(path)


def walk_nodes(root: yaml.Node) -> Iterator[yaml.Node]:
    """Every node of a composed YAML document once (aliases make shared nodes)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(node.value)


def _node_problem(node: yaml.Node) -> str | None:
    tag = node.tag
    if isinstance(node, yaml.MappingNode) and any(
        isinstance(k, yaml.ScalarNode) and k.value == "trust_remote_code" for k, _ in node.value
    ):
        return "asks Hugging Face to run the model's own code (trust_remote_code)"
    if tag.startswith(("!new:", "!name:")):
        path = tag.split(":", 1)[1]
        return None if callable_allowed(path) else "a class or function outside the allowlist"
    if tag.startswith("!apply:"):
        path = tag.split(":", 1)[1]
        return None if path in ALLOWED_APPLY else "a function call outside the allowlist"
    if tag.startswith(("!module:", "!include:", "!applyref:")):
        return "imports a module, includes a file or calls a function"
    if tag.startswith(_CORE + "python/"):
        return "a Python object tag"
    if tag == "!ref" and "**" in str(node.value):
        return "a power operator in a reference"
    if isinstance(node, yaml.ScalarNode) and (tag == "!tuple" or tag == _CORE + "str"):
        if _TUPLE.match(node.value) and not _TUPLE_SAFE.match(node.value):
            return "a tuple literal with more than plain values (HyperPyYAML reads it unsafely)"
        return None
    if tag in _DATA_TAGS or tag in _PLAIN_TAGS:
        return None
    return "a YAML tag outside the allowlist"


def _compose(path: Path) -> yaml.Node:
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{path} is not valid YAML ({str(exc).splitlines()[0]}); fix the file"
        ) from None
    if not isinstance(root, yaml.MappingNode):
        raise SourceError(f"{path} does not hold a mapping of hyperparameters; fix the file")
    return root


def untrusted_tags(hparams_path: str | Path) -> list[UntrustedTag]:
    """Every tag of ``hparams_path`` that the allowlist does not permit (nothing is built).

    The GUI lists these in its confirmation dialog before opening a folder with trust.
    """
    root = _compose(Path(hparams_path))
    found = [
        UntrustedTag(
            "trust_remote_code" if isinstance(node, yaml.MappingNode) else node.tag,
            node.start_mark.line + 1,
            problem,
        )
        for node in walk_nodes(root)
        if (problem := _node_problem(node)) is not None
    ]
    return sorted(found, key=lambda t: (t.line, t.tag))


def folder_untrusted_tags(folder: str | Path) -> list[UntrustedTag]:
    """:func:`untrusted_tags` of a model folder's ``hyperparams.yaml``."""
    return untrusted_tags(Path(folder) / "hyperparams.yaml")


def checked_hyperparams(hparams_path: Path) -> str:
    """The file re-serialized from its checked node graph; refuses any untrusted tag."""
    found = untrusted_tags(hparams_path)
    if found:
        first = found[0]
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise SourceError(
            f"{hparams_path} {first.describe()}{more}, which speechquant's allowlist of model "
            "classes does not permit; nothing was built. If you trust this folder's code, pass "
            "--trust-code (Python: open_model(..., trust_code=True))"
        )
    return str(yaml.serialize(_compose(hparams_path), Dumper=yaml.SafeDumper))
