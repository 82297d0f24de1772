"""SLSA build provenance of a nix-image: an in-toto Statement v1 whose subject is the image
manifest and whose predicate (SLSA Provenance v1) records what the image was built from: the
build target, the Nix file or flake (each file by its sha256), the options of the plan, and
every store path of the closure (by the sha256 of its NAR). Stored unsigned next to the SBOMs as
an OCI artifact referring to the image; signing (DSSE) is left to whoever publishes it.

The statement is reproducible bit for bit: no clock (times are the build's epoch or absent),
no host, no absolute path of a sandbox (paths are recorded relative to the working
directory, the build root in a Pants sandbox), and no source revision (it would change the
output of every commit; a publisher can add it when it signs)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerforge import __version__
from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.nix.flake import installable
from layerforge.images.nix.plan import NixPlan
from layerforge.images.nix.request import NixImageRequest
from layerforge.images.nix.sbom import nar_hash_hex
from layerforge.model import in_toto

PROVENANCE_TITLE = "provenance.intoto.json"
BUILD_TYPE = "https://layerforge.dev/buildtypes/nix-oci-image/v1"
BUILDER_ID = "https://layerforge.dev/builder"
#: Plan fields that are no parameter of the build: the schema version, what the build
#: resolved or decided (closure, layers and their jobs: the closure is in
#: resolvedDependencies), the switch that asked for this statement, and the revision
#: annotation (no source revision goes into the statement; see the module docstring).
#: (``layerBatches`` and ``cutsAfter`` say how a build system runs the layer jobs: never the
#: image's bytes, so never its provenance.)
_NOT_OPTIONS = frozenset({"version", "closure", "layers", "jobs", "layerBatches", "cutsAfter", "sbom", "revision"})


@dataclass(frozen=True)
class SourceFile:
    """A file the build read, by its path relative to the working directory and its sha256."""

    path: str
    sha256: str

    @classmethod
    def read(cls, path: Path, option: str) -> SourceFile:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as e:
            raise UsageError(option, f"cannot read '{path}': {e.strerror or e}") from None
        return cls(recorded_path(path), digest)


def recorded_path(path: Path | str) -> str:
    """``path`` as the statement records it: relative to the working directory when it is
    absolute and under it (a sandbox's absolute paths), else as given, normalised."""
    text = os.path.normpath(str(path))
    if os.path.isabs(text):
        cwd = os.getcwd()
        if text == cwd or text.startswith(cwd.rstrip(os.sep) + os.sep):
            return os.path.relpath(text, cwd)
    return text


@dataclass(frozen=True)
class NixSource:
    """The Nix file or flake the closure was evaluated from, as given to the build."""

    nix_file: SourceFile | None = None
    flake: str | None = None
    flake_files: tuple[SourceFile, ...] = ()
    attr: str | None = None
    argstrs: tuple[tuple[str, str], ...] = ()
    system: str | None = None
    copy_to_root_attrs: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        nix_file: Path | None,
        flake: str | None,
        attr: str | None = None,
        argstrs: Sequence[tuple[str, str]] = (),
        system: str | None = None,
        copy_to_root_attrs: Sequence[str] = (),
        option: str = "--nix-file",
    ) -> NixSource | None:
        """The source of a Nix file or a flake reference (its flake.nix and flake.lock read
        when it is a local flake); None for neither (store paths, derivations: the plan's roots
        say all)."""
        if nix_file is not None and flake is not None:
            raise UsageError(option, "records a Nix file or a flake, not both")
        if nix_file is None and flake is None:
            return None
        common: dict[str, Any] = {"attr": attr, "argstrs": tuple(sorted(argstrs)), "system": system}
        if nix_file is not None:
            ctr = tuple(sorted(set(copy_to_root_attrs)))
            return cls(nix_file=SourceFile.read(nix_file, option), copy_to_root_attrs=ctr, **common)
        assert flake is not None
        flake_option = option.replace("nix-file", "flake")
        ref, directory = _flake_ref(flake, flake_option)
        refs = [_flake_ref(a, option.replace("nix-file", "copy-to-root-attr")) for a in copy_to_root_attrs]
        directories = [directory, *sorted({d for _, d in refs if d is not None} - {directory})]
        files = tuple(f for d in directories if d is not None for f in _flake_files(d, flake_option))
        ctr = tuple(sorted({r for r, _ in refs}))
        return cls(flake=ref, flake_files=files, copy_to_root_attrs=ctr, **common)

    @property
    def files(self) -> tuple[SourceFile, ...]:
        return (self.nix_file,) if self.nix_file is not None else self.flake_files

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.nix_file is not None:
            out["nixFile"] = {"path": self.nix_file.path, "sha256": self.nix_file.sha256}
        if self.flake is not None:
            out["flake"] = self.flake
            out["flakeFiles"] = [{"path": f.path, "sha256": f.sha256} for f in self.flake_files]
        if self.attr is not None:
            out["attr"] = self.attr
        if self.argstrs:
            out["argstrs"] = dict(self.argstrs)
        if self.system is not None:
            out["system"] = self.system
        if self.copy_to_root_attrs:
            out["copyToRootAttrs"] = list(self.copy_to_root_attrs)
        return out


def _flake_ref(ref: str, option: str) -> tuple[str, Path | None]:
    """A flake reference as recorded (a local flake as ``path:DIR#ATTR``, DIR relative to the
    working directory, however it was spelled) and its directory if it is local."""
    resolved = installable(ref, Path.cwd(), option)
    if not resolved.startswith("path:"):
        return ref, None
    where, sep, fragment = resolved.removeprefix("path:").partition("#")
    return f"path:{recorded_path(where)}{sep}{fragment}", Path(where)


def _flake_files(directory: Path, option: str) -> list[SourceFile]:
    """A local flake's flake.nix and its flake.lock if it has one."""
    files = [SourceFile.read(directory / "flake.nix", option)]
    if (directory / "flake.lock").is_file():
        files.append(SourceFile.read(directory / "flake.lock", option))
    return files


@dataclass(frozen=True)
class BuildInputs:
    """What the build was asked, beyond its plan: for the provenance statement."""

    #: The build system's name of what was built (a Pants target address).
    target: str | None = None
    source: NixSource | None = None
    #: The image's name (``io.containerd.image.name``), if it has one besides its ref.
    image_name: str | None = None

    @classmethod
    def of_request(cls, req: NixImageRequest, target: str | None, image_name: str | None) -> BuildInputs:
        """What ``nix-image`` records of its own request."""
        source = NixSource.of(
            nix_file=req.nix_file,
            flake=req.flake,
            attr=req.attr,
            argstrs=req.argstrs,
            system=req.system,
            copy_to_root_attrs=req.copy_to_root_attrs,
        )
        return cls(target=target, source=source, image_name=image_name)


def build_options(plan: NixPlan) -> dict[str, Any]:
    """The plan's options: its JSON without what is no parameter (:data:`_NOT_OPTIONS`)."""
    return {k: v for k, v in plan.to_json().items() if k not in _NOT_OPTIONS}


def _file_dependency(f: SourceFile, role: str) -> dict[str, Any]:
    return {"name": f.path, "digest": {"sha256": f.sha256}, "annotations": {"role": role}}


def provenance_statement(plan: NixPlan, manifest_digest: str, build: BuildInputs) -> dict[str, Any]:
    """The in-toto Statement v1 (SLSA Provenance v1 predicate) of the image whose manifest is
    ``manifest_digest``, built from ``plan`` as ``build`` says."""
    algo, _, hex_digest = manifest_digest.partition(":")
    if algo != "sha256" or len(hex_digest) != 64:
        raise LayerforgeError(f"the image manifest digest {manifest_digest!r} is not sha256")
    external: dict[str, Any] = {"options": build_options(plan)}
    if build.target is not None:
        external["target"] = build.target
    resolved: list[dict[str, Any]] = []
    if build.source is not None:
        external["source"] = build.source.to_json()
        role = "nix-file" if build.source.nix_file is not None else "flake"
        resolved += [_file_dependency(f, role) for f in build.source.files]
    if plan.base is not None:
        base: dict[str, Any] = {"digest": {"sha256": plan.base.digest.partition(":")[2]}}
        if plan.base.ref:
            base["name"] = plan.base.ref
        resolved.append({**base, "annotations": {"role": "base-image", "layers": plan.base.layers}})
    for path in plan.closure.paths:
        info = plan.closure.infos[path]
        annotations: dict[str, Any] = {"narSize": info.nar_size}
        if info.deriver:
            annotations["deriver"] = info.deriver
        resolved.append(
            {"uri": f"nix:{path}", "digest": {"sha256": nar_hash_hex(info.nar_hash)}, "annotations": annotations}
        )
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {"layerforgeVersion": __version__},
            "resolvedDependencies": resolved,
        },
        "runDetails": {"builder": {"id": f"{BUILDER_ID}/{__version__}", "version": {"layerforge": __version__}}},
    }
    return in_toto.statement(build.image_name or plan.ref, hex_digest, in_toto.SLSA_PROVENANCE_V1, predicate)
