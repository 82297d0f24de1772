"""Export an image from a layout as a ``docker load`` archive.

The classic ``docker save`` shape, which docker, podman and skopeo all read: the config as
``<hex>.json``, each layer *uncompressed* as ``<diff_id hex>/layer.tar``, a ``manifest.json``
tying them together, and ``repositories`` when the image is tagged. Layers are decompressed
by the native core, which also checks each blob against its digest and diff_id on the way.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError, LayoutError, UsageError
from layerforge.layout.image_reader import select_manifest
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex
from layerforge.model.image_config import ImageConfig
from layerforge.model.manifest import Manifest
from layerforge.model.repo_tags import default_repo_tags, parse_repo_tag
from layerforge.progress import ProgressCallback
from layerforge.trust.tars import check_complete, reading_tar


@dataclass(frozen=True)
class DockerArchiveResult:
    path: Path
    manifest: Descriptor
    repo_tags: tuple[str, ...]
    layers: int


def export_docker_archive(
    layout: OciLayout,
    ref: str | None,
    out: Path,
    *,
    repo_tags: Sequence[str] = (),
    platform: str | None = None,
    epoch: int = 1,
    progress: ProgressCallback | None = None,
) -> DockerArchiveResult:
    _check_out_outside(layout, out)
    entry = layout.resolve(ref)
    desc = select_manifest(layout, entry, platform)
    manifest = layout.read_manifest(desc)
    config_bytes = layout.read_blob(manifest.config.digest, manifest.config.size)
    config = layout.read_config(manifest)
    if len(config.diff_ids) != len(manifest.layers):
        raise LayoutError(
            f"{desc.digest}: config lists {len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers"
        )
    tags = list(repo_tags) or default_repo_tags(entry, ref)
    for t in tags:
        parse_repo_tag(t)

    out_dir = out.parent if str(out.parent) else Path(".")
    if not out_dir.is_dir():
        raise LayerforgeError(f"--out: directory '{out_dir}' does not exist")
    total = sum(layer.size for layer in manifest.layers)
    with scratch_dir(out_dir, "export") as tmp:
        layer_files: dict[str, Path] = {}
        offset = 0
        for i, (layer, diff_id) in enumerate(zip(manifest.layers, config.diff_ids)):
            if diff_id in layer_files:
                offset += layer.size
                continue
            dest = tmp / f"{i}.tar"
            base = offset

            def relay(done: int, _total: int, base: int = base) -> None:
                if progress is not None:
                    progress(base + done, total)

            what = f"'{layout.root}': layer {i + 1} ({layer.digest})"
            layout.decompress(layer, dest, what, progress=relay, diff_id=diff_id)
            check_tar(dest, what)
            layer_files[diff_id] = dest
            offset += layer.size

        archive_tmp = tmp / "archive.tar"
        _write_archive(
            archive_tmp,
            config_bytes=config_bytes,
            manifest=manifest,
            config=config,
            layer_files=layer_files,
            tags=tags,
            epoch=epoch,
        )
        os.replace(archive_tmp, out)
    return DockerArchiveResult(path=out, manifest=desc, repo_tags=tuple(tags), layers=len(manifest.layers))


def _check_out_outside(layout: OciLayout, out: Path) -> None:
    """The archive may not replace the layout it is made from, nor any file in it."""
    root = layout.root.resolve()
    target = out.resolve()
    if target == root or root in target.parents:
        raise UsageError("--out", f"'{out}' is inside the source layout '{layout.root}'")


def check_tar(path: Path, what: str) -> None:
    """Read every header of the tar ``path`` (member data is skipped): a truncated or
    non-tar layer is refused before it goes into an archive."""
    with reading_tar(path, what) as tar:
        tar.getmembers()
        check_complete(tar, what)


def _write_archive(
    path: Path,
    *,
    config_bytes: bytes,
    manifest: Manifest,
    config: ImageConfig,
    layer_files: dict[str, Path],
    tags: list[str],
    epoch: int,
) -> None:
    config_name = f"{digest_hex(manifest.config.digest)}.json"
    layer_names = [f"{digest_hex(d)}/layer.tar" for d in config.diff_ids]
    docker_manifest = [{"Config": config_name, "RepoTags": tags or None, "Layers": layer_names}]

    def info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.mtime = epoch
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.size = size
        ti.mode = 0o755 if directory else 0o644
        ti.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
        return ti

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info(config_name, len(config_bytes)), io.BytesIO(config_bytes))
        for diff_id in sorted(layer_files):
            hexd = digest_hex(diff_id)
            tar.addfile(info(f"{hexd}/", directory=True))
            src = layer_files[diff_id]
            with open(src, "rb") as f:
                tar.addfile(info(f"{hexd}/layer.tar", src.stat().st_size), f)
        body = canonical_json(docker_manifest)
        tar.addfile(info("manifest.json", len(body)), io.BytesIO(body))
        if tags:
            repos: dict[str, dict[str, str]] = {}
            for t in tags:
                name, tag = parse_repo_tag(t)
                repos.setdefault(name, {})[tag] = digest_hex(config.diff_ids[-1]) if config.diff_ids else ""
            body = canonical_json(repos)
            tar.addfile(info("repositories", len(body)), io.BytesIO(body))
