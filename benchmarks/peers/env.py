"""The peers' own virtualenv: faster-whisper, ONNX Runtime and optimum, pinned, never in speechquant's.

Built once under ``cache_dir() / "peers-venv"`` from ``benchmarks/peers-requirements.txt``. torch
and numpy are borrowed from speechquant's environment through a ``.pth`` file, which Python
appends after the venv's own site-packages: the venv's pinned packages (transformers 4.x for
optimum) win, and a second multi-GB torch is not installed. A marker records the requirements'
hash and the borrowed folder; a change rebuilds the venv.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from speechquant.core.paths import cache_dir

REQUIREMENTS = Path(__file__).resolve().parent.parent / "peers-requirements.txt"
MARKER = "speechquant-peers.json"


@dataclass(frozen=True)
class PeersEnv:
    root: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def site_packages(self) -> Path:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / "lib" / version / "site-packages"


def _borrowed() -> Path:
    """The site-packages folder speechquant's torch is installed in."""
    return Path(torch.__file__).resolve().parent.parent


def _wanted() -> dict[str, str]:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return {"requirements_sha256": digest, "borrowed": str(_borrowed()), "python": sys.version}


def ensure_peers_env() -> PeersEnv:
    """The peers venv, created (or rebuilt when the requirements changed) on first use."""
    env = PeersEnv(cache_dir() / "peers-venv")
    marker = env.root / MARKER
    try:
        if json.loads(marker.read_text(encoding="utf-8")) == _wanted():
            return env
    except (OSError, ValueError):
        pass
    print(f"creating the peers virtualenv in {env.root} (pip, a few minutes)", file=sys.stderr)
    shutil.rmtree(env.root, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(env.root)], check=True)
    (env.site_packages / "zz-speechquant-env.pth").write_text(f"{_borrowed()}\n", encoding="utf-8")
    pip = [env.python, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)]
    if subprocess.run(pip).returncode != 0:
        raise SystemExit(
            f"error: installing {REQUIREMENTS.name} into {env.root} failed (see pip's output above); "
            "PyPI must be reachable"
        )
    marker.write_text(json.dumps(_wanted()), encoding="utf-8")
    return env
