"""A worker unpacks a packed model folder only when it holds plain files inside the folder."""

from __future__ import annotations

import io
import tarfile

import pytest

from speechquant.core.cluster.settings import ClusterError
from speechquant.core.cluster.worker import plain_members


def _packed(*entries: tuple[str, bytes | None, bytes]) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if data is not None:
                info.size = len(data)
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r")


def test_plain_files_and_folders_pass():
    tar = _packed(
        ("model", None, tarfile.DIRTYPE), ("model/hyperparams.yaml", b"x: 1", tarfile.REGTYPE)
    )
    assert [m.name for m in plain_members(tar)] == ["model", "model/hyperparams.yaml"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("/etc/cron.d/job", tarfile.REGTYPE),
        ("model/../../outside", tarfile.REGTYPE),
        ("model/link", tarfile.SYMTYPE),
    ],
)
def test_anything_else_is_refused_in_one_line(name, kind):
    tar = _packed((name, b"" if kind == tarfile.REGTYPE else None, kind))
    with pytest.raises(ClusterError, match="not a plain file inside the model folder"):
        plain_members(tar)
