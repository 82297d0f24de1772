"""The nix_oci_image target: a Nix closure as a layered OCI image (`layerforge nix-image`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar, Optional

from pants.engine.addresses import Address
from pants.engine.target import (
    BoolField,
    Dependencies,
    DictStringToStringField,
    Field,
    IntField,
    InvalidFieldException,
    InvalidFieldTypeException,
    MultipleSourcesField,
    SingleSourceField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from layerforge_pants.goals.field_rules import checked, checked_level, choices, default_of, high
from layerforge_pants.goals.option_rules import PERM_GRAMMAR
from layerforge_pants.goals.roles import BASE, IMAGE, INDEX_ENTRY, NYDUS_SOURCE
from layerforge_pants.goals.target_types import (
    COMMON_IMAGE_FIELDS,
    RUNTIME_FIELDS,
    BaseImageField,
    CompressionField,
    CompressionLevelField,
    UserField,
)
from layerforge_pants.goals.tool_option import ToolFlagField, ToolOptionField
from layerforge_pants.nix.flake import parse_flake_ref

#: Characters of store path and output names; a store path (Nix's base-32 omits e, o, u, t).
NAME = r"[A-Za-z0-9+\-._?=]+"
STORE_PATH = rf"/nix/store/[0-9a-df-np-sv-z]{{32}}-{NAME}"
_STORE_PATH = re.compile(rf"^{STORE_PATH}\Z")
_PERM = re.compile(PERM_GRAMMAR)
LAYER_LIMIT = high("nix.max_layers")
DEFAULT_UID = 1000
MAX_ID = 2**32 - 2


class ImageArchField(ToolOptionField, StringField):
    alias = "arch"
    flag = "--arch"
    valid_choices = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64")
    help = "Architecture of the image (default: `system`'s, else the machine's)."


#: Nix systems and the image architecture they give (python/layerforge/model/platform.py has
#: the same table for the tool; the plugin does not import the tool; tests/test_model.py holds
#: the two, and `arch`'s choices and LINUX_ARCHES, to one another).
NIX_SYSTEMS = {
    "x86_64-linux": "amd64",
    "aarch64-linux": "arm64",
    "armv7l-linux": "arm",
    "i686-linux": "386",
    "powerpc64le-linux": "ppc64le",
    "s390x-linux": "s390x",
    "riscv64-linux": "riscv64",
}


class NixSystemField(ToolOptionField, StringField):
    alias = "system"
    flag = "--system"
    valid_choices = tuple(NIX_SYSTEMS)
    help = help_text(
        """
        The Nix system to build the closure for (`aarch64-linux`, `armv7l-linux`, ...): a
        `nix_file` is evaluated with `--argstr system SYSTEM --system SYSTEM`, a flake's `.#NAME`
        is `packages.SYSTEM.NAME`. It sets the image's platform (`aarch64-linux` is
        linux/arm64/v8, `armv7l-linux` linux/arm/v7, `i686-linux` linux/386); `arch` overrides it.
        Default: the machine's.
        """
    )


class NixAllowForeignExecutablesField(ToolFlagField, BoolField):
    alias = "allow_foreign_executables"
    flag = "--allow-foreign-executables"
    default = False
    help = help_text(
        """
        Let executables and shared objects built for another machine than the image's
        architecture into the image (`--allow-foreign-executables`). By default the layers refuse
        them, read from each executable's ELF header as its file is archived.
        """
    )


class NixFileField(SingleSourceField):
    alias = "nix_file"
    required = False
    expected_file_extensions: ClassVar[tuple[str, ...]] = (".nix",)
    help = help_text(
        """
        Nix file built like `nix-build` (`--nix-file`). It is evaluated (`nix-instantiate`) on
        every Pants run, with the Nix environment passed through (`NIX_PATH`, `NIX_CONFIG`, ...), and
        the derivations it gives key the cached build: a channel or any file Nix reads that changed
        gives a new image. Files it imports by relative path must be declared (in `dependencies`,
        as `files`/`resources`): the evaluation sees only them.
        """
    )


class NixFlakeField(StringField):
    alias = "flake"
    help = help_text(
        """
        Flake output to build, relative to the BUILD file's directory: `.#app` (resolved like
        `nix build`: `packages.<system>.app`, `legacyPackages.<system>.app`, `app`),
        `.#packages.x86_64-linux.app`, `path:sub#app` (a flake in `sub/`). The flake is read as a
        `path:` directory of the target's `flake_sources`, evaluated with its lock file, which is
        used and never rewritten (`--no-update-lock-file`). With `flake`, `copy_to_root_attrs`
        entries are flake output references too (`[".#busybox"]`).
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            parse_flake_ref(value, address, cls.alias)
        return value


class NixFlakeSourcesField(MultipleSourcesField):
    alias = "flake_sources"
    default = None
    help = help_text(
        """
        Files of the flake(s) `flake` and `copy_to_root_attrs` name, relative to the BUILD file's
        directory. Default: every file under each flake's directory (`flake.nix` and `flake.lock`
        included), which is what Nix copies of a `path:` flake.
        """
    )


class NixAttrField(StringField):
    alias = "attr"
    help = "Attribute of `nix_file` to build (`-A`)."


class NixArgstrsField(DictStringToStringField):
    alias = "argstrs"
    help = "String arguments for `nix-build` (`--argstr NAME VALUE`)."


def store_paths_checked(alias: str, address: Address, paths: Iterable[str]) -> None:
    """Each of ``paths`` (from the field ``alias``) is a Nix store path, or one line naming the
    target, the field and the value: nothing else reaches the tool as a store path."""
    for p in paths:
        if not _STORE_PATH.match(p):
            raise InvalidFieldException(
                f"The `{alias}` field of {address} has {p!r}, which is not a Nix store path (/nix/store/<hash>-<name>)."
            )


class NixStorePathsField(StringSequenceField):
    alias = "store_paths"
    help = "Store paths already in the Nix store, instead of `nix_file`."

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        store_paths_checked(cls.alias, address, value or ())
        return value


class NixLayeringField(ToolOptionField, StringField):
    alias = "layering"
    flag = "--layering"
    default = default_of("nix.layering")
    valid_choices = choices("nix.layering")
    help = "How store paths share layers: `popularity` (default) or `per-path`."


class NixMaxLayersField(ToolOptionField, IntField):
    alias = "max_layers"
    flag = "--max-layers"
    default = default_of("nix.max_layers")
    help = f"Layer budget including base layers (1 to {LAYER_LIMIT}, default {default_of('nix.max_layers')})."

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            checked(cls.alias, address, "nix.max_layers", value)
        return value


class NixLayerGroupsField(ToolOptionField, Field):
    alias = "layer_groups"
    flag = "--layer-group"
    default: ClassVar[tuple[tuple[str, ...], ...]] = ()
    help = "Lists of store paths that share one layer each (the same layer in every image)."
    value: tuple[tuple[str, ...], ...]

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> tuple[tuple[str, ...], ...]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(g, (list, tuple)) and g and all(isinstance(p, str) for p in g) for g in value
        ):
            raise InvalidFieldTypeException(address, cls.alias, value, expected_type="a list of lists of store paths")
        store_paths_checked(cls.alias, address, (p for g in value for p in g))
        return tuple(tuple(g) for g in value)

    def option_values(self) -> tuple[object, ...]:
        """A group as its store paths joined by commas: one `--layer-group` each."""
        return tuple(",".join(group) for group in self.value or ())


class NixCopyToRootField(ToolOptionField, StringSequenceField):
    alias = "copy_to_root"
    flag = "--copy-to-root"
    help = "Store paths merged into `/` (like `--copy-to-root`)."

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        store_paths_checked(cls.alias, address, value or ())
        return value


class NixCopyToRootAttrsField(StringSequenceField):
    alias = "copy_to_root_attrs"
    help = help_text(
        """
        Attributes of `nix_file` (or, with `flake`, flake output references like `.#busybox`) whose
        outputs are merged into `/` (like `--copy-to-root-attr`).
        """
    )


class NixCopyToRootModeField(ToolOptionField, StringField):
    alias = "copy_to_root_mode"
    flag = "--copy-to-root-mode"
    default = "symlink"
    valid_choices = ("symlink", "copy")
    help = "How copy-to-root entries appear in `/`: symlinks into the store (default) or copies."


class NixPermsField(ToolOptionField, StringSequenceField):
    alias = "perms"
    flag = "--perms"
    help = help_text(
        """
        `REGEX=MODE[:UID:GID]` rules for the mode and owner of matching store paths; owner and
        group may be the names of `user`'s account (`/nix/store/.*-app/var(/.*)?=0755:app:app`).
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for v in value or ():
            if not _PERM.match(v):
                raise InvalidFieldException(
                    f"The `{cls.alias}` field of {address} has {v!r}, which is not REGEX=MODE[:UID:GID]."
                )
        return value


class NixUidField(ToolOptionField, IntField):
    alias = "uid"
    flag = "--uid"
    help = help_text(
        f"""
        Uid of `user` (a name). An image with no `/etc/passwd` gets one in its root layer, with root
        and the user (this uid, default {DEFAULT_UID}), a matching `/etc/group` and the user's home
        directory `/home/<user>` (owned by the user). An image that has one (from `base_image` or
        `copy_to_root`) must list the user, with this uid if given.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        value = super().compute_value(raw_value, address)
        if value is not None and not 0 <= value <= MAX_ID:
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} must be within 0..{MAX_ID}, got {value}."
            )
        return value


class NixGidField(NixUidField):
    alias = "gid"
    flag = "--gid"
    help = "Gid of `user`'s group (default: the uid); see `uid`."


class NixSbomField(ToolFlagField, BoolField):
    alias = "sbom"
    flag = "--sbom"
    default = False
    help = (
        "Attach SPDX 2.3 and CycloneDX 1.5 SBOMs of the closure and an SLSA provenance statement "
        "(in-toto, unsigned, naming this target) (pushed as referrers of the image)."
    )


class NixSnapshotterField(ToolFlagField, BoolField):
    alias = "nix_snapshotter"
    flag = "--nix-snapshotter"
    default = False
    help = "Build for containerd's nix-snapshotter: one layer of store-path mountpoints."


class NixImageDependenciesField(Dependencies):
    pass


class NixOciImageTarget(Target):
    alias = "nix_oci_image"
    roles = frozenset({IMAGE, BASE, NYDUS_SOURCE, INDEX_ENTRY})
    core_fields = (
        *COMMON_IMAGE_FIELDS,
        NixImageDependenciesField,
        NixFileField,
        NixAttrField,
        NixArgstrsField,
        NixFlakeField,
        NixFlakeSourcesField,
        NixStorePathsField,
        NixLayeringField,
        NixMaxLayersField,
        NixLayerGroupsField,
        NixCopyToRootField,
        NixCopyToRootAttrsField,
        NixCopyToRootModeField,
        NixPermsField,
        NixUidField,
        NixGidField,
        NixSbomField,
        NixSnapshotterField,
        BaseImageField,
        NixSystemField,
        ImageArchField,
        NixAllowForeignExecutablesField,
        CompressionField,
        CompressionLevelField,
        *RUNTIME_FIELDS,
    )
    help = help_text(
        """
        A Nix closure as a layered, reproducible OCI image (`layerforge nix-image`).

        The closure comes from `nix_file` (+ `attr`, `argstrs`), `flake` or `store_paths`.
        Nix files and flakes are evaluated to derivations on every run; the build is keyed by
        them, so an image is never stale. `pants package` writes an OCI image layout under
        `dist/`; each layer (layers under 8 MiB in small batches) is its own cached process,
        the same in every image that holds the layer, so a layer shared by many images is built
        once, and changing one store path rebuilds only its layer or batch.
        `pants publish` pushes the layout.
        """
    )

    def validate(self) -> None:
        sources = [f.alias for f in (NixFileField, NixFlakeField, NixStorePathsField) if self[f].value]
        if len(sources) != 1:
            given = f" (it has {' and '.join(f'`{s}`' for s in sources)})" if sources else ""
            raise InvalidFieldException(
                f"The {self.alias} target {self.address} needs exactly one of `nix_file`, `flake` and "
                f"`store_paths`{given}."
            )
        for field, needs in (
            (NixAttrField, ("nix_file",)),
            (NixArgstrsField, ("nix_file",)),
            (NixCopyToRootAttrsField, ("nix_file", "flake")),
            (NixFlakeSourcesField, ("flake",)),
        ):
            if self[field].value and sources[0] not in needs:
                raise InvalidFieldException(
                    f"The `{field.alias}` field of {self.address} needs {' or '.join(f'`{n}`' for n in needs)}."
                )
        if self[NixSystemField].value and "system" in (self[NixArgstrsField].value or {}):
            raise InvalidFieldException(
                f"The `argstrs` field of {self.address} has `system`, which the `system` field gives; give it once."
            )
        if self[NixFlakeField].value:
            for ref in self[NixCopyToRootAttrsField].value or ():
                parse_flake_ref(ref, self.address, NixCopyToRootAttrsField.alias)
        compression = self[CompressionField].value or default_of("layer.compression")
        checked_level(CompressionLevelField.alias, self.address, compression, self[CompressionLevelField].value)
        user = (self[UserField].value or "").partition(":")[0]
        for ids in (NixUidField, NixGidField):
            if self[ids].value is not None and (not user or user.isdigit()):
                raise InvalidFieldException(f"The `{ids.alias}` field of {self.address} needs `user` (a name).")
