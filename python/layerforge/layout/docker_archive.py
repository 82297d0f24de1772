"""Export an image from a layout as a ``docker load`` archive.

The classic ``docker save`` shape, which docker, podman and skopeo all read: the config as
``<hex>.json``, each layer *uncompressed* as ``<diff_id hex>/layer.tar``, a ``manifest.json``
tying them together, and ``repositories`` when the image is tagged. The native core copies
each uncompressed layer from its blob in-kernel and checks the copy (a valid tar, the
layer's digest); a compressed layer is first decompressed (digest and diff_id checked).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge import _native
from layerforge._native import LayerSpec
from layerforge.errors import LayerforgeError, LayoutError, UsageError
from layerforge.layout.image_reader import select_manifest
from layerforge.layout.layer_members import build_into_archive
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex, sha256_digest
from layerforge.model.image_config import ImageConfig
from layerforge.model.manifest import Manifest
from layerforge.model.media_types import UNCOMPRESSED_LAYERS
from layerforge.model.repo_tags import default_repo_tags, parse_repo_tag
from layerforge.progress import ProgressCallback


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
    firsts: dict[str, int] = {}
    for i, diff_id in enumerate(config.diff_ids):
        firsts.setdefault(diff_id, i)
    with scratch_dir(out_dir, "export") as tmp:
        done = 0

        def relay(base: int) -> ProgressCallback | None:
            if progress is None:
                return None
            report = progress
            return lambda n, _total: report(base + n, total)

        def put_layer(diff_id: str, archive: _TarWriter) -> None:
            """One layer's member: an uncompressed blob is queued to be copied from the layout
            by the kernel (its digest and tar headers checked on the copy); a compressed one
            is decompressed (digest and diff_id checked) to a scratch file, copied the same way."""
            nonlocal done
            i = firsts[diff_id]
            layer = manifest.layers[i]
            what = f"'{layout.root}': layer {i + 1} ({layer.digest})"
            name = f"{digest_hex(diff_id)}/layer.tar"
            if layer.media_type in UNCOMPRESSED_LAYERS:
                if layer.digest != diff_id:
                    raise LayoutError(f"{what} is uncompressed, but the image config's diff_id is {diff_id}")
                archive.add_copy(name, layout.blob_path(layer.digest), layer.size, layer.digest, what)
            else:
                done += archive.copy_queued(relay(done))  # no pile of scratch files
                dest = tmp / f"{i}.tar"
                layout.decompress(layer, dest, what, progress=relay(done), diff_id=diff_id)
                archive.add_copy(name, dest, dest.stat().st_size, diff_id, what)
                archive.copy_queued(None)
                dest.unlink()
                done += layer.size
                if progress is not None:
                    progress(done, total)

        archive_tmp = tmp / "archive.tar"
        _write_archive(
            archive_tmp,
            config_bytes=config_bytes,
            manifest=manifest,
            config=config,
            diff_ids=sorted(firsts),
            put_layer=put_layer,
            tags=tags,
            epoch=epoch,
            progress=relay(done),
        )
        os.replace(archive_tmp, out)
    return DockerArchiveResult(path=out, manifest=desc, repo_tags=tuple(tags), layers=len(manifest.layers))


def _check_out_outside(layout: OciLayout, out: Path) -> None:
    """The archive may not replace the layout it is made from, nor any file in it."""
    root = layout.root.resolve()
    target = out.resolve()
    if target == root or root in target.parents:
        raise UsageError("--out", f"'{out}' is inside the source layout '{layout.root}'")


def _write_archive(
    path: Path,
    *,
    config_bytes: bytes,
    manifest: Manifest,
    config: ImageConfig,
    diff_ids: list[str],
    put_layer: Callable[[str, _TarWriter], None],
    tags: list[str],
    epoch: int,
    progress: ProgressCallback | None,
) -> None:
    config_name = f"{digest_hex(manifest.config.digest)}.json"
    with _TarWriter(path, epoch) as tar:
        tar.add_bytes(config_name, config_bytes)
        for diff_id in diff_ids:
            hexd = digest_hex(diff_id)
            tar.add_dir(f"{hexd}/")
            put_layer(diff_id, tar)
        tar.copy_queued(progress)
        _add_manifest(tar, config_name, config.diff_ids, tags)


def _add_manifest(tar: _TarWriter, config_name: str, diff_ids: Sequence[str], tags: Sequence[str]) -> None:
    """``manifest.json`` (the config, tags and layer members) and, when tagged, ``repositories``."""
    layer_names = [f"{digest_hex(d)}/layer.tar" for d in diff_ids]
    docker_manifest = [{"Config": config_name, "RepoTags": list(tags) or None, "Layers": layer_names}]
    tar.add_bytes("manifest.json", canonical_json(docker_manifest))
    if tags:
        repos: dict[str, dict[str, str]] = {}
        for t in tags:
            name, tag = parse_repo_tag(t)
            repos.setdefault(name, {})[tag] = digest_hex(diff_ids[-1]) if diff_ids else ""
        tar.add_bytes("repositories", canonical_json(repos))


@dataclass(frozen=True)
class LayerFile:
    """A layer's plain tar that exists as a file (a blob, a decompressed scratch copy)."""

    path: Path
    size: int
    diff_id: str
    what: str


def layer_file(layout: OciLayout, layer: Descriptor, diff_id: str, what: str, scratch: Path) -> LayerFile:
    """Layer ``layer`` of ``layout`` as a plain tar file: its blob when uncompressed (which
    must then be ``diff_id``), else decompressed into ``scratch`` (digest and diff_id checked)."""
    if layer.media_type in UNCOMPRESSED_LAYERS:
        if layer.digest != diff_id:
            raise LayoutError(f"{what} is uncompressed, but the image config's diff_id is {diff_id}")
        return LayerFile(layout.blob_path(layer.digest), layer.size, diff_id, what)
    dest = scratch / f"{digest_hex(diff_id)}.tar"
    if not dest.exists():
        layout.decompress(layer, dest, what, diff_id=diff_id)
    return LayerFile(dest, dest.stat().st_size, diff_id, what)


def write_streamed_archive(
    out: Path,
    layers: Sequence[LayerSpec | LayerFile],
    config_for: Callable[[list[str]], bytes],
    *,
    tags: Sequence[str],
    epoch: int,
    threads: int = 0,
    machine: str | None = None,
    progress: ProgressCallback | None = None,
) -> list[tuple[str, int]]:
    """A docker-archive written at ``out`` (atomically) in one pass, layers first: each spec
    built straight into it, each :class:`LayerFile` copied in-kernel and verified (a valid
    tar with its diff_id); then the config ``config_for(diff_ids)`` returns,
    ``manifest.json`` and ``repositories``. The (diff_id, size) of each layer, in order."""
    for t in tags:
        parse_repo_tag(t)
    out_dir = out.parent if str(out.parent) else Path(".")
    with scratch_dir(out_dir, "export") as tmp:
        path = tmp / "archive.tar"
        with _TarWriter(path, epoch) as tar:
            jobs = [x if isinstance(x, LayerSpec) else (x.path, x.size, x.diff_id, x.what) for x in layers]
            members, end = build_into_archive(
                path, jobs, mtime=epoch, threads=threads, machine=machine, progress=progress
            )
            tar.skip_to(end)
            diff_ids = [diff_id for diff_id, _, _ in members]
            config_bytes = config_for(diff_ids)
            config_name = f"{digest_hex(sha256_digest(config_bytes))}.json"
            tar.add_bytes(config_name, config_bytes)
            _add_manifest(tar, config_name, diff_ids, tags)
        os.replace(path, out)
    return [(diff_id, size) for diff_id, size, _ in members]


class _TarWriter:
    """The archive as ``tarfile.open(path, "w", format=PAX_FORMAT)`` writes it (headers from
    ``TarInfo.tobuf``, the same end-of-archive blocks and record padding), except that layers
    are never read through Python: their members are reserved (left as holes) and filled by
    the native core, which copies each layer file in-kernel and checks the copy."""

    def __init__(self, path: Path, epoch: int) -> None:
        self.path = path
        self.file = open(path, "xb")  # noqa: SIM115 (closed by __exit__)
        self.epoch = epoch
        self.offset = 0
        self.queued: list[tuple[Path, int, int, str, str]] = []

    def __enter__(self) -> _TarWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                if self.queued:
                    raise AssertionError("layers queued but never copied into the archive")
                self._write(tarfile.NUL * (tarfile.BLOCKSIZE * 2))
                remainder = self.offset % tarfile.RECORDSIZE
                if remainder:
                    self._write(tarfile.NUL * (tarfile.RECORDSIZE - remainder))
        finally:
            self.file.close()

    def _write(self, data: bytes) -> None:
        self.file.write(data)
        self.offset += len(data)

    def _header(self, name: str, size: int = 0, directory: bool = False) -> None:
        ti = tarfile.TarInfo(name)
        ti.mtime = self.epoch
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.size = size
        ti.mode = 0o755 if directory else 0o644
        ti.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
        self._write(ti.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))

    def _pad(self, size: int) -> None:
        remainder = size % tarfile.BLOCKSIZE
        if remainder:
            self._write(tarfile.NUL * (tarfile.BLOCKSIZE - remainder))

    def add_dir(self, name: str) -> None:
        self._header(name, directory=True)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data))
        self._write(data)
        self._pad(len(data))

    def skip_to(self, offset: int) -> None:
        """Continue after ``offset`` bytes that were written into the file by someone else."""
        self.file.flush()
        self.file.seek(offset)
        self.offset = offset

    def add_copy(self, name: str, src: Path, size: int, digest: str, what: str) -> None:
        """A member of ``size`` bytes holding the layer tar ``src``: its place in the archive
        is reserved now, and filled by :meth:`copy_queued`, which requires the copy to be a
        valid tar with ``digest`` (errors name the layer as ``what``)."""
        self._header(name, size)
        self.queued.append((src, self.offset, size, digest, what))
        self.file.seek(size, os.SEEK_CUR)
        self.offset += size
        self._pad(size)

    def copy_queued(self, progress: ProgressCallback | None) -> int:
        """Copy the queued layers into their places (concurrently); the bytes copied."""
        if not self.queued:
            return 0
        self.file.flush()
        _native.copy_layers(self.path, self.queued, progress=progress)
        copied = sum(job[2] for job in self.queued)
        self.queued.clear()
        return copied
