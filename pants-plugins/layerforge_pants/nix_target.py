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
    SingleSourceField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from layerforge_pants.target_types import (
    COMMON_IMAGE_FIELDS,
    RUNTIME_FIELDS,
    BaseImageField,
    CompressionField,
    CompressionLevelField,
)

_STORE_PATH = re.compile(r"^/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$")
_PERM = re.compile(r"^.+=(?:[0-7]{3,4})?(?::\d+:\d+)?$")
LAYER_LIMIT = 125


class ImageArchField(StringField):
    alias = "arch"
    valid_choices = ("amd64", "arm64")
    help = "Architecture of the image (default: the machine's)."


class NixFileField(SingleSourceField):
    alias = "nix_file"
    required = False
    expected_file_extensions: ClassVar[tuple[str, ...]] = (".nix",)
    help = help_text(
        """
        Nix file built with `nix-build` (like `--nix-file`). Files it reads must be declared too
        (in `dependencies`, as `files`/`resources`), so that they are part of the cache key.
        """
    )


class NixAttrField(StringField):
    alias = "attr"
    help = "Attribute of `nix_file` to build (`-A`)."


class NixArgstrsField(DictStringToStringField):
    alias = "argstrs"
    help = "String arguments for `nix-build` (`--argstr NAME VALUE`)."


class NixStorePathsField(StringSequenceField):
    alias = "store_paths"
    help = "Store paths already in the Nix store, instead of `nix_file`."

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for p in value or ():
            if not _STORE_PATH.match(p):
                raise InvalidFieldException(
                    f"The `{cls.alias}` field of {address} has {p!r}, which is not a Nix store path "
                    "(/nix/store/<hash>-<name>)."
                )
        return value


class NixLayeringField(StringField):
    alias = "layering"
    default = "popularity"
    valid_choices = ("popularity", "per-path")
    help = "How store paths share layers: `popularity` (default) or `per-path`."


class NixMaxLayersField(IntField):
    alias = "max_layers"
    default = 100
    help = f"Layer budget including base layers (1..{LAYER_LIMIT}, default 100)."

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        value = super().compute_value(raw_value, address)
        if value is not None and not 1 <= value <= LAYER_LIMIT:
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} must be within 1..{LAYER_LIMIT}, got {value}."
            )
        return value


class NixLayerGroupsField(Field):
    alias = "layer_groups"
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
        return tuple(tuple(g) for g in value)


class NixCopyToRootField(StringSequenceField):
    alias = "copy_to_root"
    help = "Store paths merged into `/` (like `--copy-to-root`)."


class NixCopyToRootAttrsField(StringSequenceField):
    alias = "copy_to_root_attrs"
    help = "Attributes of `nix_file` whose outputs are merged into `/` (like `--copy-to-root-attr`)."


class NixCopyToRootModeField(StringField):
    alias = "copy_to_root_mode"
    default = "symlink"
    valid_choices = ("symlink", "copy")
    help = "How copy-to-root entries appear in `/`: symlinks into the store (default) or copies."


class NixPermsField(StringSequenceField):
    alias = "perms"
    help = "`REGEX=MODE[:UID:GID]` rules for the mode and owner of matching paths."

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for v in value or ():
            if not _PERM.match(v):
                raise InvalidFieldException(
                    f"The `{cls.alias}` field of {address} has {v!r}, which is not REGEX=MODE[:UID:GID]."
                )
        return value


class NixSbomField(BoolField):
    alias = "sbom"
    default = False
    help = "Attach an SPDX 2.3 SBOM of the closure (pushed as a referrer of the image)."


class NixSnapshotterField(BoolField):
    alias = "nix_snapshotter"
    default = False
    help = "Build for containerd's nix-snapshotter: one layer of store-path mountpoints."


class NixImageDependenciesField(Dependencies):
    pass


class NixOciImageTarget(Target):
    alias = "nix_oci_image"
    core_fields = (
        *COMMON_IMAGE_FIELDS,
        NixImageDependenciesField,
        NixFileField,
        NixAttrField,
        NixArgstrsField,
        NixStorePathsField,
        NixLayeringField,
        NixMaxLayersField,
        NixLayerGroupsField,
        NixCopyToRootField,
        NixCopyToRootAttrsField,
        NixCopyToRootModeField,
        NixPermsField,
        NixSbomField,
        NixSnapshotterField,
        BaseImageField,
        ImageArchField,
        CompressionField,
        CompressionLevelField,
        *RUNTIME_FIELDS,
    )
    help = help_text(
        """
        A Nix closure as a layered, reproducible OCI image (`layerforge nix-image`).

        The closure comes from `nix_file` (+ `attr`, `argstrs`) or `store_paths`. `pants package`
        writes an OCI image layout under `dist/`; each layer is its own cached process, so
        changing one store path rebuilds only its layer. `pants publish` pushes the layout.
        """
    )

    def validate(self) -> None:
        has_file = self[NixFileField].value is not None
        has_paths = bool(self[NixStorePathsField].value)
        if has_file == has_paths:
            raise InvalidFieldException(
                f"The {self.alias} target {self.address} needs exactly one of `nix_file` and `store_paths`."
            )
        for needs_file in (NixAttrField, NixCopyToRootAttrsField, NixArgstrsField):
            if self[needs_file].value and not has_file:
                raise InvalidFieldException(f"The `{needs_file.alias}` field of {self.address} needs `nix_file`.")
