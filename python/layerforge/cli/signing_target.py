"""What ``sign``, ``attest`` and ``verify`` act on: ``LAYOUT_DIR[:REF]`` (the cosign objects
go into the layout, beside the image, and ``push`` carries them) or
``docker://REGISTRY/REPO[:TAG|@DIGEST]`` (they go where cosign keeps them: the
``sha256-<hex>.sig`` / ``.att`` tags of the repository). Either way: the store, the image's
manifests (an index and each image it lists), and the repository the signature names."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError, UsageError
from layerforge.layout.image_reader import MAX_INDEX_DEPTH
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import sha256_digest
from layerforge.model.index import Index
from layerforge.model.reference import split_layout_ref
from layerforge.model.repo_tags import IMAGE_NAME
from layerforge.option_flags import default
from layerforge.registry import answers
from layerforge.registry.connect import target_client
from layerforge.registry.reference import parse_image_name
from layerforge.registry.transport import request_timeout
from layerforge.signing.layout_store import LayoutStore
from layerforge.signing.registry_store import RegistryStore
from layerforge.signing.store import CosignStore

PREFIX = "docker://"
DEFAULT_RETRIES = int(default("push.retries"))
TARGET_METAVAR = "LAYOUT_DIR[:REF]|docker://REGISTRY/REPO[:TAG|@DIGEST]"


@dataclass
class Target:
    store: CosignStore
    #: The image (manifest or index) first, then every manifest an index lists.
    subjects: list[Descriptor]
    #: ``REGISTRY/REPO`` (what signatures name), when known.
    repository: str | None
    layout: OciLayout | None = None


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help=f"the image: {TARGET_METAVAR}")
    p.add_argument("--insecure", action="store_true", help="plain HTTP (loopback registries always use it)")


def add_reference_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reference",
        metavar="REGISTRY/REPO",
        help="for a layout: the repository the image will be pushed to, which the signature names "
        "(default: the repository of the layout's io.containerd.image.name)",
    )


@contextlib.contextmanager
def open_target(args: argparse.Namespace, *, write: bool) -> Iterator[Target]:
    if args.target.startswith(PREFIX):
        with _registry_target(args, write=write) as target:
            yield target
    else:
        yield _layout_target(args)


def _layout_target(args: argparse.Namespace) -> Target:
    layout_dir, ref = split_layout_ref(args.target)
    layout = OciLayout.open(Path(layout_dir))
    entry = layout.resolve(ref)
    root = Descriptor(media_type=entry.media_type, digest=entry.digest, size=entry.size)
    subjects = [root]
    if root.media_type in media_types.INDEX_TYPES:
        _children(layout.read_nested_index, root, subjects, 0)
    repository = getattr(args, "reference", None)
    if repository:
        name = parse_image_name(repository, "--reference")
        if name.tag or name.digest:
            raise UsageError("--reference", f"name a repository without a tag or digest, not {repository!r}")
        repository = f"{name.registry}/{name.repository}"
    elif entry.annotations.get(IMAGE_NAME):
        name = parse_image_name(entry.annotations[IMAGE_NAME], IMAGE_NAME)
        repository = f"{name.registry}/{name.repository}"
    return Target(store=LayoutStore(layout), subjects=subjects, repository=repository, layout=layout)


def _children(read: Callable[[Descriptor], Index], desc: Descriptor, out: list[Descriptor], depth: int) -> None:
    if depth >= MAX_INDEX_DEPTH:
        raise LayerforgeError(f"index {desc.digest}: indexes nest deeper than {MAX_INDEX_DEPTH} levels")
    index: Index = read(desc)
    for m in index.manifests:
        if m.artifact_type or any(s.digest == m.digest for s in out):
            continue
        d = Descriptor(media_type=m.media_type, digest=m.digest, size=m.size)
        out.append(d)
        if m.media_type in media_types.INDEX_TYPES:
            _children(read, d, out, depth + 1)


@contextlib.contextmanager
def _registry_target(args: argparse.Namespace, *, write: bool) -> Iterator[Target]:
    name = parse_image_name(args.target.removeprefix(PREFIX), "TARGET")
    deadline = request_timeout(os.environ)
    client = target_client(name, insecure=args.insecure, retries=DEFAULT_RETRIES, timeout=deadline, pull_only=not write)
    try:
        reference = name.digest or name.tag or "latest"
        found = client.get_manifest(name.repository, reference)
        if found is None:
            raise LayerforgeError(f"{name}: no such image in the registry")
        digest = sha256_digest(found[0])
        if name.digest and digest != name.digest:
            raise LayerforgeError(f"{name}: the registry sent a document with another digest; refused")
        doc = answers.json_body(found[0], str(name))
        media_type = found[1] or (doc.get("mediaType") if isinstance(doc, dict) else None) or ""
        if media_type not in media_types.MANIFEST_TYPES | media_types.INDEX_TYPES:
            raise LayerforgeError(f"{name}: not an image manifest or index ({media_type or 'no media type'})")
        root = Descriptor(media_type=media_type, digest=digest, size=len(found[0]))
        subjects = [root]
        if root.media_type in media_types.INDEX_TYPES:

            def read(d: Descriptor) -> Index:
                found = client.get_manifest(name.repository, d.digest)
                where = f"{name.registry}/{name.repository}@{d.digest}"
                if found is None:
                    raise LayerforgeError(f"{where}: listed by an index but not in the registry")
                if sha256_digest(found[0]) != d.digest:
                    raise LayerforgeError(f"{where}: the registry sent a document with another digest; refused")
                return Index.from_json(answers.json_body(found[0], where), where)

            _children(read, root, subjects, 0)
        yield Target(
            store=RegistryStore(client, name.repository),
            subjects=subjects,
            repository=f"{name.registry}/{name.repository}",
        )
    finally:
        client.close()
