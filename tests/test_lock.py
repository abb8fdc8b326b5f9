"""The installed packages are the ones requirements.lock names (CI tests what users get)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"
PINNED = ("torch", "torchaudio", "speechbrain", "transformers", "pyside6-essentials", "numpy")


def locked_versions(text: str) -> dict[str, str]:
    """``name==version`` lines of a pip-compile / uv lock, names normalised (PEP 503)."""
    found = {}
    for match in re.finditer(r"^([A-Za-z0-9][\w.-]*)==([^\s\\;]+)", text, re.M):
        found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def test_lock_parser_reads_names_and_versions():
    text = "torch==2.11.0 \\\n    --hash=sha256:ab\nPySide6_Essentials==6.12.0 \\\n"
    assert locked_versions(text) == {"torch": "2.11.0", "pyside6-essentials": "6.12.0"}


def test_lock_pins_torch_and_torchaudio_as_a_matching_pair():
    locked = locked_versions(LOCK.read_text())
    assert locked["torch"] == locked["torchaudio"] == "2.11.0"


@pytest.mark.parametrize("name", PINNED)
def test_installed_version_matches_the_lock(name):
    locked = locked_versions(LOCK.read_text())[name]
    installed = metadata.version(name).split("+")[0]
    assert installed == locked, f"{name} {installed} is installed but the lock says {locked}"


def test_every_locked_package_carries_a_hash():
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    pins = [b for b in blocks if re.match(r"^[A-Za-z0-9][\w.-]*==", b)]
    assert pins and all("--hash=sha256:" in b for b in pins)
