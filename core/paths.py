"""Where speechquant keeps its caches and data (overridable for tests)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from speechquant.core.errors import SpeechquantError


def cache_dir() -> Path:
    """Built models (replicas, converted demo model, synthesized demo data).

    ``SPEECHQUANT_CACHE`` overrides the platform's user cache folder.
    """
    root = os.environ.get("SPEECHQUANT_CACHE") or platformdirs.user_cache_dir("speechquant")
    return _folder(Path(root), "SPEECHQUANT_CACHE")


def data_dir() -> Path:
    """The results store and user datasets. ``SPEECHQUANT_DATA`` overrides it."""
    root = os.environ.get("SPEECHQUANT_DATA") or platformdirs.user_data_dir("speechquant")
    return _folder(Path(root), "SPEECHQUANT_DATA")


def _folder(path: Path, variable: str) -> Path:
    """``path`` as an existing folder, made if missing; a file or unwritable place is refused."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SpeechquantError(
            f"{path} is a file, not a folder; point {variable} at a folder"
        ) from None
    except OSError as exc:
        raise SpeechquantError(
            f"cannot create {path} ({exc.strerror}); point {variable} at a writable folder"
        ) from None
    return path


def shared_speech_dir() -> Path | None:
    """The real-speech test set beside the checkout, if present (``SPEECHQUANT_SPEECH`` overrides)."""
    env = os.environ.get("SPEECHQUANT_SPEECH")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [parent / "shared" / "data" / "speech" for parent in here.parents]
    candidates += [parent.parent / "shared" / "data" / "speech" for parent in [Path.cwd()]]
    for candidate in candidates:
        if (candidate / "manifest.csv").is_file():
            return candidate
    return None


@contextmanager
def building_folder(
    target: Path, is_current: Callable[[Path], bool] | None = None
) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target`` to build into; install it on success.

    On normal exit the folder is moved into place atomically, replacing an outdated ``target``
    (but where ``is_current(target)`` says another process already installed a good one, that one
    is kept). On any error the temporary folder is removed, so a crash never leaves a half-built
    ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        _install_folder(tmp, target, is_current)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_builds(target: Path) -> list[Path]:
    """Remove ``target``'s hidden build folders left by processes that are gone (kill -9)."""
    removed = []
    for path in target.parent.glob(f".{target.name}.build-*"):
        pid = path.name.removeprefix(f".{target.name}.build-").split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _install_folder(tmp: Path, target: Path, is_current: Callable[[Path], bool] | None) -> None:
    if target.exists() or target.is_symlink():
        if is_current is not None and is_current(target):
            return
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:
        if is_current is None or not is_current(target):
            raise
