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

from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.unikraft import documents as doc
from layerforge.images.unikraft.package_name import PackageName
from layerforge.layout.oci_layout import TMP_DIR, OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex
from layerforge.trust.blobs import import_blob
from layerforge.trust.rootfs import RootDir, components
from layerforge.trust.text import shown


def default_store() -> Path:
    """kraftkit's: ``oci`` in its runtime directory, ``$KRAFTKIT_RUNTIME_DIR`` (what kraftkit's
    ``runtime_dir`` setting reads from the environment) or ``$XDG_DATA_HOME/kraftkit/runtime``
    (``~/.local/share/kraftkit/runtime`` without it)."""
    runtime = os.environ.get("KRAFTKIT_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "oci"
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


def tag_path(name: PackageName) -> str:
    """Where the tag link of ``name`` lives below the store, relative: ``indexes/`` and the
    name with every ':' made '/' (kraftkit's layout); a name whose parts are not plain names
    (``..``, empty) is refused, so the link stays inside the store."""
    rel = "indexes/" + str(name).replace(":", "/")
    try:
        components(rel)
    except LayerforgeError:
        raise UsageError("--name", f"{shown(repr(str(name)))} does not give a path inside the store") from None
    return rel


def export_to_store(layout: OciLayout, index: Descriptor, name: PackageName, store: Path) -> Path:
    """Copy the package into ``store``; the path of its tag symlink. Paths below the store
    are walked without following symlinks (:class:`RootDir`)."""
    rel = tag_path(name)
    digests = store / "digests" / "sha256"
    tmp = store / TMP_DIR
    try:
        digests.mkdir(parents=True, exist_ok=True)
        for d in package_blobs(layout, index):
            target = digests / digest_hex(d.digest)
            if not target.is_file():
                what = f"'{layout.root}': blob {d.digest}"
                import_blob(layout.blob_path(d.digest), target, d.digest, d.size, tmp, link=False, what=what)
        link = tmp / f".tag.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        os.symlink((digests / digest_hex(index.digest)).resolve(), link)
        try:
            with RootDir(store) as root:
                root.rename_into(link, rel)
        finally:
            link.unlink(missing_ok=True)
    except OSError as e:
        raise LayerforgeError(f"--kraftkit-store: cannot write '{store}': {e.strerror or e}") from None
    except LayerforgeError as e:
        raise LayerforgeError(f"--kraftkit-store '{store}': {e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.rmdir()
    return store / rel
