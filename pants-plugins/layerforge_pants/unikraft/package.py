"""`pants package` for unikraft_image: one `layerforge unikraft-image` process per target,
with the kernel, kconfig and initrd inputs taken from its dependencies; other unikraft_image
targets named in `platforms` are packaged first and included."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.package import PackageFieldSet
from pants.engine.fs import Snapshot
from pants.engine.unions import UnionRule

from layerforge_pants.goals.dependency import ImageDependency, ImageDependencyRequest
from layerforge_pants.goals.dependency_files import locate
from layerforge_pants.goals.package import ImageFieldSet, ImageNames, config_argv
from layerforge_pants.goals.target_types import CmdField, EnvField, LabelsField
from layerforge_pants.goals.tool_option import fields_argv, option
from layerforge_pants.unikraft.target import (
    UnikraftArchField,
    UnikraftImageTarget,
    UnikraftInitrdCompressionField,
    UnikraftInitrdField,
    UnikraftInitrdOwnerField,
    UnikraftInitrdSpecField,
    UnikraftKconfigField,
    UnikraftKernelField,
    UnikraftPackageNameField,
    UnikraftPlatField,
    UnikraftPlatformsField,
    UnikraftRootfsField,
    UnikraftRootfsImageField,
    UnikraftVersionField,
)


@dataclass(frozen=True)
class UnikraftImageFieldSet(ImageFieldSet, PackageFieldSet):
    required_fields = (UnikraftKernelField,)

    kernel: UnikraftKernelField
    arch: UnikraftArchField
    plat: UnikraftPlatField
    kconfig: UnikraftKconfigField
    initrd: UnikraftInitrdField
    rootfs: UnikraftRootfsField
    rootfs_image: UnikraftRootfsImageField
    initrd_compression: UnikraftInitrdCompressionField
    initrd_spec: UnikraftInitrdSpecField
    initrd_owner: UnikraftInitrdOwnerField
    package_name: UnikraftPackageNameField
    unikraft_version: UnikraftVersionField
    platforms: UnikraftPlatformsField
    cmd: CmdField
    env: EnvField
    labels: LabelsField


def unikraft_argv(field_set: UnikraftImageFieldSet, names: ImageNames, files: Snapshot) -> list[str]:
    """`layerforge unikraft-image` of the target, its inputs located in ``files``: every value
    as ``--flag=value`` (see :func:`option`)."""
    address = field_set.address
    argv = ["unikraft-image", option("--out", field_set.layout_dir()), option("--tag", names.ref)]
    argv.append(option("--kernel", locate(files, address, "kernel", field_set.kernel.value or "")))
    argv += fields_argv(field_set.arch, field_set.plat)
    for flag, f in (
        ("--kconfig", field_set.kconfig),
        ("--initrd", field_set.initrd),
        ("--initrd-spec", field_set.initrd_spec),
    ):
        if f.value:
            argv.append(option(flag, locate(files, address, f.alias, f.value)))
    if field_set.rootfs.value:
        argv.append(option("--rootfs", locate(files, address, "rootfs", field_set.rootfs.value, directory=True)))
    argv += fields_argv(field_set.initrd_compression, field_set.initrd_owner, field_set.unikraft_version)
    argv.append(option("--name", field_set.package_name.value or f"unikraft.org/{names.repository}:{names.ref}"))
    return argv + config_argv(field_set.cmd, field_set.env, field_set.labels)


def image_requests(field_set: UnikraftImageFieldSet) -> list[ImageDependencyRequest]:
    """The `rootfs_image` and the `platforms` images, packaged first."""
    address = field_set.address
    requests = []
    if field_set.rootfs_image.value:
        requests.append(ImageDependencyRequest(address, "rootfs_image", field_set.rootfs_image.value, "rootfs-image"))
    for i, value in enumerate(field_set.platforms.value or ()):
        requests.append(
            ImageDependencyRequest(address, "platforms", value, f"platform-{i}", allowed=(UnikraftImageTarget.alias,))
        )
    return requests


def image_argv(images: tuple[ImageDependency, ...]) -> list[str]:
    return [option("--rootfs-image" if i.prefix == "rootfs-image" else "--include", i.layout_ref) for i in images]


def rules():
    return [UnionRule(PackageFieldSet, UnikraftImageFieldSet)]
