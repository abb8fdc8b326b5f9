"""Output paths checked before any work starts: parent folders created, bad targets refused."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from speechquant.core.errors import DataError

#: argparse destinations that name an output file, and the option users typed.
OUTPUT_FILES = {"json": "--json", "output": "-o", "plot": "--plot", "record": "--record"}


def check_output_file(value: str, flag: str) -> Path:
    """``value`` as a file that can be written: its parent made, a folder or file parent refused."""
    path = Path(value).expanduser()
    if path.is_dir():
        raise DataError(f"{flag} {value} is a folder; give a file name inside it")
    parent = path.parent
    for ancestor in [parent, *parent.parents]:
        if ancestor.exists() and not ancestor.is_dir():
            raise DataError(
                f"{flag} {value}: {ancestor} is a file, not a folder; choose another path"
            )
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"{flag} {value}: cannot create {parent} ({exc.strerror}); choose another path"
        ) from None
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DataError(f"{flag} {value} is not writable; choose another path")
    return path


def check_output_folder(value: str, flag: str, replace: bool) -> Path:
    """An export target: new or empty (or, with ``replace``, an earlier export); parent made."""
    from speechquant.core.export.loader import is_export_folder

    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"{flag} {value} is a file; give a new folder")
    if path.is_dir() and any(path.iterdir()) and not (replace and is_export_folder(path)):
        extra = "" if is_export_folder(path) else " (it is not an earlier export)"
        raise DataError(
            f"{flag} {value} already exists and is not empty{extra}; choose a new folder"
            + (" or pass --force to replace the earlier export" if not extra else "")
        )
    if not path.is_dir():
        check_output_file(str(path), flag)
    elif not os.access(path, os.W_OK):
        raise DataError(f"{flag} {value} is not writable; choose another folder")
    return path


def check_outputs(args: argparse.Namespace) -> None:
    """Check every output option ``args`` holds before the command does any work."""
    for dest, flag in OUTPUT_FILES.items():
        value = getattr(args, dest, None)
        if isinstance(value, str) and value != "-":
            check_output_file(value, flag)
    if args.command == "export":
        check_output_folder(args.out, "--out", args.force)
