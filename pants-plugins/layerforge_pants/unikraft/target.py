"""The unikraft_image target: a unikernel packaged the way `kraft pkg` does
(`layerforge unikraft-image`)."""

from __future__ import annotations

import re
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.target import (
    Dependencies,
    InvalidFieldException,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from layerforge_pants.goals.field_rules import choices, default_of
from layerforge_pants.goals.roles import IMAGE
from layerforge_pants.goals.target_types import COMMON_IMAGE_FIELDS, CmdField, EnvField, LabelsField
from layerforge_pants.goals.tool_option import ToolOptionField


class _DependencyFileField(StringField):
    """A path (relative to the BUILD file's directory) of a file that a dependency provides."""

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and (value.startswith("/") or ".." in value.split("/") or not value.strip("/")):
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} must be a relative path inside the repository, got {value!r}."
            )
        return value


class UnikraftKernelField(_DependencyFileField):
    alias = "kernel"
    required = True
    help = help_text(
        """
        The kernel: a Unikraft ELF, or a Linux bzImage/Image. A path relative to this BUILD
        file's directory, provided by a `files`/`resources` target (or generated code) in
        `dependencies`. Its architecture is read from the file and checked against `arch`.
        """
    )


class UnikraftArchField(ToolOptionField, StringField):
    alias = "arch"
    flag = "--arch"
    required = True
    valid_choices = ("x86_64", "arm64", "arm", "amd64", "aarch64")
    help = "Architecture (kraftkit's names: `x86_64`, `arm64`, `arm`; `amd64`/`aarch64` accepted)."


class UnikraftPlatField(ToolOptionField, StringField):
    alias = "plat"
    flag = "--plat"
    required = True
    valid_choices = ("qemu", "fc", "xen", "kraftcloud", "linuxu", "kvm", "firecracker")
    help = "Platform the kernel was built for (the image's `os`)."


class UnikraftKconfigField(_DependencyFileField):
    alias = "kconfig"
    help = "The kernel's `.config` (from `dependencies`), stored as the image's `os.features`."


class UnikraftInitrdField(_DependencyFileField):
    alias = "initrd"
    help = "An existing initrd (cpio, compressed cpio or EROFS) from `dependencies`, used as is."


class UnikraftRootfsField(_DependencyFileField):
    alias = "rootfs"
    help = help_text(
        """
        A directory (every file the `dependencies` provide under it) or a tar file, packed
        into a reproducible newc cpio initrd.
        """
    )


class UnikraftRootfsImageField(StringField):
    alias = "rootfs_image"
    help = (
        "Address of an image target whose root filesystem is packed as the initrd (a `nix_oci_image`, a "
        "`remote_oci_image`, ...)."
    )


class UnikraftInitrdCompressionField(ToolOptionField, StringField):
    alias = "initrd_compression"
    flag = "--initrd-compression"
    default = default_of("unikraft.initrd_compression")
    valid_choices = choices("unikraft.initrd_compression")
    help = "Compression of an initrd built from `rootfs`/`rootfs_image` (Unikraft reads plain cpio)."


class UnikraftInitrdSpecField(_DependencyFileField):
    alias = "initrd_spec"
    help = "Device nodes for the initrd: `nod`/`pipe` lines of a `gen_init_cpio` spec (from `dependencies`)."


class UnikraftInitrdOwnerField(ToolOptionField, StringField):
    alias = "initrd_owner"
    flag = "--initrd-owner"
    help = "Owner (`UID:GID`) of the entries of an initrd built from `rootfs`/`rootfs_image` (default `0:0`)."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and not re.match(r"^[0-9]+:[0-9]+$", value):
            raise InvalidFieldException(f"The `{cls.alias}` field of {address} must be `UID:GID`, got {value!r}.")
        return value


class UnikraftPackageNameField(StringField):
    alias = "package_name"
    help = help_text(
        """
        The kraftkit package name (`io.containerd.image.name`), e.g. `unikraft.org/app:1.0`.
        Defaults to `unikraft.org/<repository>:<first image tag>`.
        """
    )


class UnikraftVersionField(ToolOptionField, StringField):
    alias = "unikraft_version"
    flag = "--version"
    help = "Unikraft version (`os.version`); defaults to the kconfig's `CONFIG_UK_FULLVERSION`."


class UnikraftPlatformsField(StringSequenceField):
    alias = "platforms"
    help = help_text(
        """
        Addresses of other `unikraft_image` targets whose platforms join this image's index
        (one manifest per platform; a platform built by this target wins).
        """
    )


class UnikraftDependenciesField(Dependencies):
    pass


class UnikraftImageTarget(Target):
    alias = "unikraft_image"
    roles = frozenset({IMAGE})
    core_fields = (
        *COMMON_IMAGE_FIELDS,
        UnikraftDependenciesField,
        UnikraftKernelField,
        UnikraftArchField,
        UnikraftPlatField,
        UnikraftKconfigField,
        UnikraftInitrdField,
        UnikraftRootfsField,
        UnikraftRootfsImageField,
        UnikraftInitrdCompressionField,
        UnikraftInitrdSpecField,
        UnikraftInitrdOwnerField,
        UnikraftPackageNameField,
        UnikraftVersionField,
        UnikraftPlatformsField,
        CmdField,
        EnvField,
        LabelsField,
    )
    help = help_text(
        """
        A unikernel packaged like KraftKit's `kraft pkg` (`layerforge unikraft-image`), so that
        `kraft pkg pull` / `kraft run` accept it: an image index with one manifest per platform,
        the kernel and initrd as uncompressed layers, the kconfig as `os.features`. Unlike kraft,
        the same inputs give the same digests.

        The kernel, kconfig, initrd and rootfs files come from `dependencies` (`files`,
        `resources` or generated code); `rootfs_image` packs another image target's root
        filesystem instead. `platforms` adds other unikraft_image targets to the same index.
        """
    )

    def validate(self) -> None:
        sources = [
            f.alias for f in (UnikraftInitrdField, UnikraftRootfsField, UnikraftRootfsImageField) if self[f].value
        ]
        if len(sources) > 1:
            raise InvalidFieldException(
                f"The {self.alias} target {self.address} sets {' and '.join(f'`{s}`' for s in sources)}; "
                "give at most one initrd source."
            )
        if self[UnikraftInitrdSpecField].value and not (
            self[UnikraftRootfsField].value or self[UnikraftRootfsImageField].value
        ):
            raise InvalidFieldException(f"The `initrd_spec` field of {self.address} needs `rootfs` or `rootfs_image`.")
