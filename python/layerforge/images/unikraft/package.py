"""Build a unikernel package: one manifest per platform (kernel layer, optional initrd
layer, kconfig as ``os.features``) gathered in an image index that the layout tags.

Everything a build reads is checked before anything is written (kernel format and
architecture, kconfig syntax, initrd format, rootfs); layers are uncompressed tars, as
kraftkit unpacks layers by ``diff_id``. Re-packaging into a layout that already holds the
package replaces only the rebuilt platforms' entries (``replace=True`` drops the others)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from layerforge._native import LayerSpec
from layerforge.errors import UsageError
from layerforge.images.unikraft import documents as doc
from layerforge.images.unikraft.initrd import identify_initrd, materialize_initrd
from layerforge.images.unikraft.kconfig import VERSION_KEY, features, parse_kconfig
from layerforge.images.unikraft.kernel import check_kernel
from layerforge.images.unikraft.kraftkit_store import export_to_store, package_blobs, tag_path
from layerforge.images.unikraft.package_name import PackageName, default_package_name, parse_package_name
from layerforge.images.unikraft.platforms import check_kconfig_platform, injected_features
from layerforge.images.unikraft.target import UnikraftTarget, check_unique
from layerforge.layers.build import build_layers
from layerforge.layout.image_reader import import_blobs
from layerforge.layout.oci_layout import OciLayout, open_for_write
from layerforge.layout.unreferenced import remove_unreferenced
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.epoch import source_date_epoch
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest
from layerforge.model.platform import Platform
from layerforge.model.reference import DEFAULT_TAG, LayoutRef, validate_ref
from layerforge.progress import ProgressCallback
from layerforge.trust.text import shown


@dataclass(frozen=True)
class UnikraftImageRequest:
    targets: tuple[UnikraftTarget, ...]
    ref: str = DEFAULT_TAG
    name: str | None = None
    version: str | None = None
    run: doc.RunConfig = field(default_factory=doc.RunConfig)
    keep_setuid: bool = False
    replace: bool = False
    kraftkit_store: Path | None = None
    kraftkit_version: str = doc.KRAFTKIT_VERSION
    #: Other packages whose platforms join this one (those rebuilt here win).
    includes: tuple[LayoutRef, ...] = ()


@dataclass(frozen=True)
class PlatformImage:
    target: UnikraftTarget
    platform: Platform
    manifest: Descriptor


@dataclass(frozen=True)
class UnikraftResult:
    layout: OciLayout
    ref: str
    name: PackageName
    index: Descriptor
    built: tuple[PlatformImage, ...]
    kept: tuple[Descriptor, ...]


@dataclass(frozen=True)
class _Checked:
    target: UnikraftTarget
    platform: Platform


def _check_target(t: UnikraftTarget, version: str | None) -> _Checked:
    check_kernel(t.kernel, t.arch)
    kconfig = parse_kconfig(t.kconfig) if t.kconfig is not None else {}
    if t.initrd is not None and t.initrd.file is not None:
        identify_initrd(t.initrd.file)
    if t.initrd is not None and t.initrd.rootfs is not None and not t.initrd.rootfs.exists():
        raise UsageError("--rootfs", f"'{t.initrd.rootfs}' does not exist")
    if t.initrd is not None and t.initrd.image is not None:
        OciLayout.open(t.initrd.image.path).resolve(t.initrd.image.ref)
    check_kconfig_platform(t.plat, kconfig, t.option)
    built_version = kconfig.get(VERSION_KEY) or None
    if version is not None and built_version is not None and version != built_version:
        given, built, where = shown(repr(version)), shown(repr(built_version)), shown(repr(str(t.kconfig)))
        raise UsageError("--version", f"{given} contradicts {VERSION_KEY}={built} of {where} ({t})")
    ver = version or built_version
    feats = features(kconfig, injected_features(t.plat, t.arch))
    return _Checked(t, doc.platform(t.plat, t.arch, ver, feats))


def _validate_version(version: str | None) -> None:
    if version is not None and (not version or any(c.isspace() for c in version)):
        raise UsageError("--version", f"{version!r} is not a Unikraft version such as 0.18.0~5f0f6e1")


def build_unikraft_image(
    out: Path,
    req: UnikraftImageRequest,
    *,
    epoch: int | None = None,
    progress: ProgressCallback | None = None,
) -> UnikraftResult:
    if not req.targets and not req.includes:
        raise UsageError("--kernel", "no target: give --kernel/--arch/--plat, --target PLAT/ARCH=KERNEL or --include")
    validate_ref(req.ref)
    _validate_version(req.version)
    targets = check_unique(list(req.targets))
    if req.name is not None:
        name = parse_package_name(req.name, req.ref)
    elif targets:
        name = default_package_name(targets[0].kernel.name, req.ref)
    else:
        raise UsageError("--name", "needed when the package only includes others")
    if req.kraftkit_store is not None:
        tag_path(name)
    checked = [_check_target(t, req.version) for t in targets]
    included = [(inc, _included_entries(inc)) for inc in req.includes]
    epoch = source_date_epoch() if epoch is None else epoch

    with open_for_write(out) as layout, ExitStack() as scratch:
        specs: list[LayerSpec] = []
        for c in checked:
            specs.append(_file_spec(c.target.kernel, doc.KERNEL_PATH, 0o755, epoch))
            if c.target.initrd is not None:
                initrd = scratch.enter_context(
                    materialize_initrd(c.target.initrd, layout.tmp_dir, epoch=epoch, progress=progress)
                )
                specs.append(_file_spec(initrd, doc.INITRD_PATH, 0o644, epoch))
        layers = iter(build_layers(layout, specs, compression="none", progress=progress))

        annotations = doc.manifest_annotations(name, None, epoch, req.kraftkit_version)
        built = []
        for c in checked:
            descs = [next(layers).descriptor.with_annotations({doc.KERNEL_ANNOTATION: doc.KERNEL_PATH})]
            if c.target.initrd is not None:
                descs.append(next(layers).descriptor.with_annotations({doc.INITRD_ANNOTATION: doc.INITRD_PATH}))
            built.append(_write_manifest(layout, c, descs, annotations, req))

        rebuilt = {c.target.key for c in checked}
        previous = _previous_blobs(layout, req.ref)
        kept = _merge_includes(layout, included, rebuilt)
        if not req.replace:
            kept += _kept_entries(layout, req.ref, rebuilt | {doc.platform_key(d) for d in kept})
        entries = sorted([*(b.manifest for b in built), *kept], key=_entry_order)
        index = Index(manifests=tuple(entries), annotations=doc.index_annotations(name, req.kraftkit_version))
        index_desc = layout.put_json(index.to_json(), media_types.IMAGE_INDEX)
        if req.kraftkit_store is not None:
            export_to_store(layout, index_desc, name, req.kraftkit_store)
        layout.tag(index_desc, req.ref)
        # The replaced platforms' blobs (and the old index) go, unless something still uses them.
        remove_unreferenced(layout, previous)
    return UnikraftResult(layout, req.ref, name, index_desc, tuple(built), tuple(kept))


def _file_spec(src: Path, dest: str, mode: int, epoch: int) -> LayerSpec:
    """A layer holding one file (symlinks to it are followed: the user named the file)."""
    spec = LayerSpec(mtime=epoch)
    spec.add_path(src.resolve(), dest)
    spec.add_perm_rule(dest, mode=mode)
    return spec


def _write_manifest(
    layout: OciLayout,
    c: _Checked,
    layers: list[Descriptor],
    annotations: dict[str, str],
    req: UnikraftImageRequest,
) -> PlatformImage:
    # Uncompressed layers: diff_id == digest.
    config = doc.config_json(c.platform, req.run, [d.digest for d in layers])
    config_desc = replace(layout.put_json(config, media_types.IMAGE_CONFIG), platform=c.platform)
    annotations = {**annotations}
    if c.platform.os_version:
        annotations[doc.KERNEL_VERSION] = c.platform.os_version
    manifest = Manifest(config=config_desc, layers=tuple(layers), annotations=annotations)
    desc = layout.put_json(manifest.to_json(), media_types.IMAGE_MANIFEST)
    return PlatformImage(c.target, c.platform, replace(desc, annotations=annotations, platform=c.platform))


def _kept_entries(layout: OciLayout, ref: str, rebuilt: set[tuple[str, str]]) -> tuple[Descriptor, ...]:
    """Entries of the package ``ref`` already names whose platform is not being rebuilt."""
    current = layout.read_index().find(ref)
    if current is None or current.media_type != media_types.IMAGE_INDEX:
        return ()
    nested = layout.read_nested_index(current)
    if not doc.is_unikraft_entry(nested.annotations):
        return ()
    return tuple(
        m
        for m in nested.manifests
        if m.platform is not None and doc.is_unikraft_entry(m.annotations) and doc.platform_key(m) not in rebuilt
    )


def _previous_blobs(layout: OciLayout, ref: str) -> list[str]:
    """The blobs of the package ``ref`` names now (none if it names no unikernel package)."""
    current = layout.read_index().find(ref)
    if current is None or current.media_type != media_types.IMAGE_INDEX:
        return []
    if not doc.is_unikraft_entry(layout.read_nested_index(current).annotations):
        return []
    return [d.digest for d in package_blobs(layout, current)]


def _included_entries(ref: LayoutRef) -> tuple[OciLayout, list[Descriptor]]:
    """The platform manifests of another package (checked before anything is written)."""
    layout = OciLayout.open(ref.path)
    entry = layout.resolve(ref.ref)
    if entry.media_type != media_types.IMAGE_INDEX:
        raise UsageError("--include", f"{ref} is not a unikernel package (an image index)")
    children = [m for m in layout.read_nested_index(entry).manifests if doc.is_unikraft_entry(m.annotations)]
    if not children or any(m.platform is None for m in children):
        raise UsageError("--include", f"{ref} is not a unikernel package (no kraftkit manifests)")
    return layout, children


def _merge_includes(
    layout: OciLayout,
    included: list[tuple[LayoutRef, tuple[OciLayout, list[Descriptor]]]],
    rebuilt: set[tuple[str, str]],
) -> tuple[Descriptor, ...]:
    """Copy the included packages' platforms (not rebuilt here) into ``layout``."""
    taken: dict[tuple[str, str], LayoutRef] = {}
    out = []
    for ref, (src, children) in included:
        for m in children:
            key = doc.platform_key(m)
            if key in rebuilt:
                continue
            if key in taken:
                raise UsageError("--include", f"{key[0]}/{key[1]} is in both {taken[key]} and {ref}")
            taken[key] = ref
            manifest = src.read_manifest(m)
            import_blobs(src, layout, doc.manifest_blobs(manifest, m))
            out.append(m)
    return tuple(out)


def _entry_order(d: Descriptor) -> tuple[str, str, str]:
    return (*doc.platform_key(d), d.digest)
