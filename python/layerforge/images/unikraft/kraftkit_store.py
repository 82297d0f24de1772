"""KraftKit's local package store (``~/.local/share/kraftkit/runtime/oci``), so that ``kraft``
on the same machine finds a package without a registry:

* ``digests/sha256/<hex>``: every blob of the package (index, manifests, configs, layers);
* ``indexes/<name with every ':' made '/'>``: a symlink to the index blob's absolute path,
  e.g. ``indexes/unikraft.org/helloworld/latest``.

Blobs are verified copies (not links into the layout: kraft rewrites store files in place),
each renamed into place; the tag symlink is replaced atomically last."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from layerforge.errors import LayerforgeError
from layerforge.images.unikraft import documents as doc
from layerforge.images.unikraft.package_name import PackageName
from layerforge.layout.image_reader import place_blob
from layerforge.layout.oci_layout import TMP_DIR, OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex


def default_store() -> Path:
    """kraftkit's default: ``$XDG_DATA_HOME/kraftkit/runtime/oci`` or ``~/.local/share/...``."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "kraftkit" / "runtime" / "oci"


def package_blobs(layout: OciLayout, index: Descriptor) -> list[Descriptor]:
    """The index and everything it references, children first."""
    out: list[Descriptor] = []
    for m in layout.read_nested_index(index).manifests:
        if m.media_type != media_types.IMAGE_MANIFEST:
            continue
        manifest = layout.read_manifest(m)
        out += doc.manifest_blobs(manifest, m)
    return [*out, index]


def export_to_store(layout: OciLayout, index: Descriptor, name: PackageName, store: Path) -> Path:
    """Copy the package into ``store``; the path of its tag symlink."""
    digests = store / "digests" / "sha256"
    tmp = store / TMP_DIR
    try:
        digests.mkdir(parents=True, exist_ok=True)
        for d in package_blobs(layout, index):
            target = digests / digest_hex(d.digest)
            if not target.is_file():
                place_blob(layout.blob_path(d.digest), target, d.digest, tmp, link=False)
        tag = store / "indexes" / str(name).replace(":", "/")
        tag.parent.mkdir(parents=True, exist_ok=True)
        link = tmp / f".{tag.name}.{os.getpid()}.link"
        link.unlink(missing_ok=True)
        os.symlink((digests / digest_hex(index.digest)).resolve(), link)
        os.replace(link, tag)
    except OSError as e:
        raise LayerforgeError(f"--kraftkit-store: cannot write '{store}': {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.rmdir()
    return tag
