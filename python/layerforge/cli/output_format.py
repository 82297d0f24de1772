"""``--format`` and ``--image-name`` of the commands that write an image: an OCI layout
directory (``oci``, the default) or one tar of it (``oci-archive``), and the
``io.containerd.image.name`` of the image's index entry.

With ``--format oci-archive``, ``--out`` names the archive: the command builds into a scratch
layout beside it, which is archived (bit for bit reproducible) and removed."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import TextIO

from layerforge.errors import UsageError
from layerforge.layout.image_name import check_image_name, name_entry
from layerforge.layout.oci_archive import write_oci_archive
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.model.epoch import source_date_epoch

OCI = "oci"
OCI_ARCHIVE = "oci-archive"
FORMATS = (OCI, OCI_ARCHIVE)


def add_output_options(p: argparse.ArgumentParser, *, image_name: bool = True) -> None:
    p.add_argument(
        "--format",
        dest="output_format",
        choices=FORMATS,
        default=OCI,
        help="oci: --out is a layout directory (default); oci-archive: --out is one tar of the layout",
    )
    if image_name:
        p.add_argument(
            "--image-name",
            metavar="NAME:TAG",
            help="io.containerd.image.name of the image's index entry (what `ctr images import` names it)",
        )


def run_with_output(args: argparse.Namespace) -> int:
    """Run the command ``args`` selects, into a scratch layout when the output is an archive."""
    check_image_name(getattr(args, "image_name", None))
    if args.output_format != OCI_ARCHIVE:
        result: int = args.run(args)
        return result
    archive: Path = args.out
    if archive.is_dir():
        raise UsageError("--out", f"'{archive}' is a directory; --format oci-archive writes a file")
    parent = archive.parent if str(archive.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError("--out", f"directory '{parent}' does not exist")
    with scratch_dir(parent, "layout") as tmp:
        args.out = tmp / "layout"
        with contextlib.redirect_stdout(_Renamed(sys.stdout, str(args.out), str(archive))):
            result = args.run(args)
        if result == 0:
            written = write_oci_archive(OciLayout.open(args.out), archive, epoch=source_date_epoch())
            print(f"{archive}: oci-archive, {written.blobs} blobs, {written.size} bytes")
        args.out = archive
    return result


class _Renamed(io.TextIOBase):
    """The command's output, naming the archive where it names the scratch layout."""

    def __init__(self, out: TextIO, scratch: str, archive: str) -> None:
        self.out, self.scratch, self.archive = out, scratch, archive

    def write(self, s: str) -> int:
        self.out.write(s.replace(self.scratch, self.archive))
        return len(s)

    def flush(self) -> None:
        self.out.flush()


def name_output(out: Path, ref: str, image_name: str | None) -> None:
    """Set ``io.containerd.image.name`` on ``ref``'s entry in the layout ``out``."""
    if image_name is None:
        return
    layout = OciLayout.open(out)
    with layout.locked():
        name_entry(layout, ref, image_name)


__all__ = ["FORMATS", "OCI", "OCI_ARCHIVE", "add_output_options", "name_output", "run_with_output"]
