"""An oci-archive (one tar of an OCI layout) opened as a layout: its ``oci-layout``,
``index.json`` and ``blobs/sha256/<hex>`` members are extracted into a scratch directory
(regular files only, names checked; nothing else is written), then read as any layout is."""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path

from layerforge.errors import LayoutError
from layerforge.trust.tars import reading_tar
from layerforge.trust.text import shown

_MEMBER = re.compile(r"^(?:\./)?(oci-layout|index\.json|blobs/sha256/[0-9a-f]{64})\Z")
_DIRS = re.compile(r"^(?:\./)?(?:blobs|blobs/sha256)?/?\Z")


def is_archive(path: Path) -> bool:
    return path.is_file() and tarfile.is_tarfile(path)


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract the layout ``archive`` holds into ``dest`` (a new directory); ``dest``."""
    what = f"'{archive}'"
    (dest / "blobs" / "sha256").mkdir(parents=True)
    with reading_tar(archive, what, "r:*", follow=True) as tar:
        for m in tar:
            name = m.name
            if m.isdir() and _DIRS.match(name):
                continue
            found = _MEMBER.match(name)
            if not found or not m.isfile():
                raise LayoutError(f"{what}: member {shown(repr(name), 200)} is not part of an OCI layout archive")
            src = tar.extractfile(m)
            assert src is not None
            with src, open(dest / found.group(1), "xb") as out:
                shutil.copyfileobj(src, out)
    if not (dest / "oci-layout").is_file():
        raise LayoutError(f"{what} is not an oci-archive (no oci-layout member)")
    return dest
