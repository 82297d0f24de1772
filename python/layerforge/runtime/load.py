"""Loading an image from an OCI layout into a container runtime, tagged ``repository:tag``.

podman copies the layout through its own ``oci:`` transport into its storage, which reuses
every layer the storage already holds (by digest) without reading its blob: a second load of an
image, or of a rebuild sharing layers, sends only the layers that changed. podman names an
``oci:`` image after its path, so the layout is reached through a fresh lowercase symlink whose
name is removed again once the image has its real names. docker gets a ``docker load``
archive (layers checked against their digests and diff_ids on the way).

Only the manifest and config are read here (and checked); the runtime checks each layer it
copies against its digest.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError, UsageError
from layerforge.layout.docker_archive import export_docker_archive
from layerforge.layout.image_reader import select_manifest
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import pid_alive, scratch_dir
from layerforge.model import media_types
from layerforge.model.annotations import REF_NAME
from layerforge.model.digest import digest_hex
from layerforge.model.reference import LayoutRef
from layerforge.model.repo_tags import default_repo_tags, parse_repo_tag
from layerforge.runtime.choice import Runtime
from layerforge.trust.text import shown

#: A path podman can name an image after (lowercase repository components, no ``:``).
_NAMEABLE = re.compile(r"^(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+\Z")
#: The symlinks podman reaches layouts through; those of dead processes are removed.
_LINK = re.compile(r"^layerforge-load-(\d+)-[0-9a-f]{16}\Z")


@dataclass(frozen=True)
class LoadedImage:
    image_id: str
    names: tuple[str, ...]


def load_image(
    runtime: Runtime, target: LayoutRef, *, tags: Sequence[str] = (), platform: str | None = None
) -> LoadedImage:
    """Load ``target`` into ``runtime`` under ``tags`` (default: the entry's
    ``io.containerd.image.name``, or its ref when that is a ``NAME:TAG``)."""
    layout = OciLayout.open(target.path)
    entry = layout.resolve(target.ref)
    if entry.media_type in media_types.INDEX_TYPES and platform is None:
        platform = host_platform()
    desc = select_manifest(layout, entry, platform)
    manifest = layout.read_manifest(desc)
    config = layout.read_config(manifest)
    if len(config.diff_ids) != len(manifest.layers):
        raise LayerforgeError(
            f"{desc.digest}: config lists {len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers"
        )
    for i, layer in enumerate(manifest.layers, 1):
        layout.require_blob(layer.digest, f"'{layout.root}': layer {i} ({layer.digest})")
    names = list(dict.fromkeys(tags)) or default_repo_tags(entry, target.ref)
    if not names:
        raise UsageError("--tag", f"'{target}' has no repository name (io.containerd.image.name); give --tag NAME:TAG")
    for name in names:
        parse_repo_tag(name)
    image_id = digest_hex(manifest.config.digest)
    if runtime.kind == "podman":
        ref = target.ref or entry.annotations.get(REF_NAME)
        if not ref:
            raise LayerforgeError(f"'{target}': the image has no reference name in index.json; tag it first")
        chosen = platform if entry.media_type in media_types.INDEX_TYPES else None
        _load_podman(runtime, layout.root, ref, chosen, image_id=image_id, names=names)
    else:
        _load_docker(runtime, layout, target.ref, platform, names)
    return LoadedImage(image_id=image_id, names=tuple(names))


def host_platform() -> str:
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
    return f"linux/{arch.get(machine, machine)}"


def _load_podman(
    runtime: Runtime, root: Path, ref: str, platform: str | None, *, image_id: str, names: Sequence[str]
) -> None:
    parent = tempfile.gettempdir()
    if not _NAMEABLE.match(parent):
        parent = "/tmp"
    _remove_stale_links(Path(parent))
    link = Path(parent, f"layerforge-load-{os.getpid()}-{secrets.token_hex(8)}")
    os.symlink(root.resolve(), link)
    try:
        pull = ["pull", "--quiet", *(["--platform", platform] if platform else []), f"oci:{link}:{ref}"]
        pulled = _call(runtime, pull).strip().splitlines()
        if not pulled or pulled[-1] != image_id:
            got = shown(pulled[-1] if pulled else "nothing")
            raise LayerforgeError(f"podman pull of '{root}' gave image {got}, not the config's {image_id}")
        try:
            _call(runtime, ["tag", image_id, *names])
        finally:
            temporary = [n for n in _repo_tags(runtime, image_id) if n.startswith(f"localhost{link}:")]
            if temporary:
                _call(runtime, ["untag", image_id, *temporary])
    finally:
        link.unlink()


def _remove_stale_links(parent: Path) -> None:
    for entry in os.scandir(parent):
        m = _LINK.match(entry.name)
        if m and entry.is_symlink() and not pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _repo_tags(runtime: Runtime, image_id: str) -> list[str]:
    out = _call(runtime, ["image", "inspect", "--format", "{{json .RepoTags}}", image_id])
    try:
        tags = json.loads(out or "[]")
    except ValueError:
        return []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _load_docker(
    runtime: Runtime, layout: OciLayout, ref: str | None, platform: str | None, names: Sequence[str]
) -> None:
    with scratch_dir(Path(tempfile.gettempdir()), "load") as tmp:
        archive = tmp / "image.tar"
        export_docker_archive(layout, ref, archive, repo_tags=names, platform=platform)
        _call(runtime, ["load", "--quiet", "--input", str(archive)])


def _call(runtime: Runtime, args: Sequence[str]) -> str:
    argv = runtime.argv(*args)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise LayerforgeError(f"{runtime.kind} {args[0]}: {e}") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise LayerforgeError(f"{runtime.kind} {args[0]} failed: {shown(why)}")
    return proc.stdout
