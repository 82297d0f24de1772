"""Evaluating a nix_oci_image's Nix file or flake to derivations, on every Pants run (see
`evaluation.py`): the evaluation processes of a target, run concurrently. Never cached, so
nothing is gained from a rule of their own; they run inside the package rule."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pants.base.specs import DirGlobSpec, RawSpecsWithoutFileOwners
from pants.engine.fs import CreateDigest, FileContent, MergeDigests, PathGlobs, Snapshot
from pants.engine.target import InvalidFieldException, Target

from layerforge_pants.goals import engine
from layerforge_pants.goals.tool import LayerforgeEnv, NixTools
from layerforge_pants.goals.tool_rules import dependency_files
from layerforge_pants.nix.evaluation import Derivations, NixEvaluation, derivations, evaluation_process
from layerforge_pants.nix.flake import FlakeRef
from layerforge_pants.nix.package import NixOciImageFieldSet
from layerforge_pants.nix.shared_evaluation import (
    WRAPPER,
    SharedAttrs,
    shared_derivations,
    shared_evaluation,
    union,
    wrapper_source,
)
from layerforge_pants.nix.shared_flake_evaluation import (
    SharedFlake,
    config_system,
    locked_url,
    metadata_evaluation,
    outputs_evaluation,
    outputs_of,
    shareable,
    shared_flake_derivations,
    sorted_fragments,
    system_evaluation,
)
from layerforge_pants.nix.target import (
    NixArgstrsField,
    NixAttrField,
    NixCopyToRootAttrsField,
    NixFileField,
    NixSystemField,
)


async def evaluate_all(
    evaluations: Sequence[NixEvaluation], nix: NixTools, env: LayerforgeEnv
) -> tuple[Derivations, ...]:
    """Run the evaluations concurrently: each one's derivations, or its one-line error."""
    results = await engine.execute_all(evaluation_process(e, nix, env) for e in evaluations)
    return tuple(derivations(e, r) for e, r in zip(evaluations, results))


async def flake_files(field_set: NixOciImageFieldSet, refs: tuple[FlakeRef, ...]) -> Snapshot:
    """The flake(s)' files: `flake_sources`, or every file under each flake's directory;
    plus files from dependencies. Each flake.nix must be there, and its flake.lock if it has one."""
    if field_set.flake_sources.value is not None:
        snapshot = await dependency_files(field_set.address, field_set.flake_sources)
        field = field_set.flake_sources.alias
    else:
        dirs = sorted({r.directory for r in refs})
        own = await engine.glob_snapshot(PathGlobs(["**/*" if d == "." else f"{d}/**/*" for d in dirs]))
        deps = await dependency_files(field_set.address)
        snapshot = await engine.merged_snapshot(MergeDigests([own.digest, deps.digest]))
        field = field_set.flake.alias
    locks = await engine.glob_paths(PathGlobs([os.path.normpath(f"{r.directory}/flake.lock") for r in refs]))
    for ref in refs:
        for name in ("flake.nix", "flake.lock"):
            path = os.path.normpath(f"{ref.directory}/{name}")
            if path not in snapshot.files and (name == "flake.nix" or path in locks.files):
                raise InvalidFieldException(
                    f"The `{field}` field of {field_set.address} does not give {path}, which the flake in "
                    f"{ref.directory}/ needs."
                )
    return snapshot


def nix_file_directories(path: str) -> RawSpecsWithoutFileOwners:
    """The targets that can read the Nix file ``path``: those of its directory and of every
    directory above it (a source field cannot name a file outside its BUILD file's directory)."""
    parts = os.path.dirname(path).split("/") if os.path.dirname(path) else []
    dirs = ["/".join(parts[:i]) for i in range(len(parts), -1, -1)]
    return RawSpecsWithoutFileOwners(
        dir_globs=tuple(DirGlobSpec(d) for d in dirs), description_of_origin=f"the images that read {path}"
    )


def same_evaluation(field_set: NixOciImageFieldSet, candidates: Iterable[Target]) -> tuple[Target, ...]:
    """The nix_oci_images among ``candidates`` that read the image's Nix file with the same
    ``argstrs`` and ``system`` (the image's own target among them): those whose attributes
    :func:`shared_attrs` gathers."""
    path, system = field_set.nix_file.file_path, field_set.system.value
    argstrs = tuple(sorted((field_set.argstrs.value or {}).items()))
    return tuple(
        tgt
        for tgt in candidates
        if tgt.has_field(NixFileField)
        and tgt[NixFileField].value
        and tgt[NixFileField].file_path == path
        and tuple(sorted((tgt[NixArgstrsField].value or {}).items())) == argstrs
        and tgt[NixSystemField].value == system
    )


def shared_attrs(field_set: NixOciImageFieldSet, candidates: Iterable[Target]) -> SharedAttrs:
    """The attributes that every nix_oci_image among ``candidates`` reading the image's Nix
    file with the same ``argstrs`` and ``system`` asks of it (``""``: the file's whole value),
    and the image's own, sorted."""
    attrs: set[str] = set()
    for tgt in same_evaluation(field_set, candidates):
        attrs.add(tgt[NixAttrField].value or "")
        attrs.update(tgt[NixCopyToRootAttrsField].value or ())
    attrs.add(field_set.attr.value or "")
    attrs.update(field_set.copy_to_root_attrs.value or ())
    path, argstrs = field_set.nix_file.file_path, tuple(sorted((field_set.argstrs.value or {}).items()))
    return SharedAttrs(path, argstrs, field_set.system.value, tuple(sorted(attrs)))


@dataclass(frozen=True)
class SharedEvaluation:
    """The one evaluation of a Nix file or flake for the images that read it: each attribute's
    (or output's) derivation outputs, those images, and what they read (for descriptions)."""

    source: str
    by_key: Mapping[str | None, tuple[str, ...]]
    images: tuple[Target, ...]
    flake: bool = False

    def derivations_of(self, image: NixOciImageFieldSet) -> tuple[Derivations, Derivations] | None:
        """An image's derivations (its closure's, its copy-to-root attrs'), or None when the
        evaluation gave none for one of them (the image then evaluates alone)."""
        ctr = tuple(image.copy_to_root_attrs.value or ())
        if self.flake:
            try:
                refs = image.flake_refs()
            except InvalidFieldException:
                return None
            own, attrs = outputs_of(self.by_key, refs[:1]), outputs_of(self.by_key, refs[1:])
        else:
            keys = (image.attr.value or "",)
            known = all(k in self.by_key for k in (*keys, *ctr))
            own = union(self.by_key, keys) if known else None
            attrs = union(self.by_key, ctr) if known else None
        if not own or attrs is None or (ctr and not attrs):
            return None
        return Derivations(own), Derivations(attrs)


async def evaluate_shared(
    field_set: NixOciImageFieldSet, sources: Snapshot, nix: NixTools, env: LayerforgeEnv
) -> SharedEvaluation | None:
    """The one evaluation of the image's Nix file for every image that reads it (see
    shared_evaluation.py), or None if there is none to share or it gave no answer."""
    try:
        candidates = await engine.targets(nix_file_directories(field_set.nix_file.file_path))
    except Exception:  # another directory's BUILD file is broken: this image evaluates alone
        return None
    shared = shared_attrs(field_set, candidates)
    if len(shared.attrs) < 2:
        return None  # only this image's one attribute: its own evaluation is the same process
    wrapper = await engine.create(CreateDigest([FileContent(WRAPPER, wrapper_source(shared.path).encode())]))
    digest = await engine.merge(MergeDigests([sources.digest, wrapper]))
    evaluation = shared_evaluation(shared, digest, field_set.address)
    (result,) = await engine.execute_all([evaluation_process(evaluation, nix, env)])
    by_attr = shared_derivations(shared, result.exit_code, result.stdout)
    if by_attr is None:
        return None
    return SharedEvaluation(shared.path, dict(by_attr), same_evaluation(field_set, candidates))


def flake_image(target: Target) -> tuple[NixOciImageFieldSet, tuple[FlakeRef, ...]] | None:
    """A nix_oci_image of a flake among the candidates, and the outputs it reads
    (:meth:`~NixOciImageFieldSet.flake_refs`); None for any other target, or when a field
    does not parse (its own evaluation says so)."""
    if not NixOciImageFieldSet.is_applicable(target):
        return None
    try:
        image = NixOciImageFieldSet.create(target)
        if image.nix_file.value or not image.flake.value:
            return None
        return image, image.flake_refs()
    except InvalidFieldException:
        return None


async def evaluate_shared_flake(
    field_set: NixOciImageFieldSet, refs: tuple[FlakeRef, ...], sources: Snapshot, nix: NixTools, env: LayerforgeEnv
) -> SharedEvaluation | None:
    """The one evaluation of the image's flake for every image that reads it with the same
    files and `system` (see shared_flake_evaluation.py), or None if there is none to share
    or it gave no answer."""
    directory, system = refs[0].directory, field_set.system.value
    if any(r.directory != directory or not shareable(r) for r in refs):
        return None
    try:
        candidates = await engine.targets(nix_file_directories(os.path.join(directory, "flake.nix")))
    except Exception:  # another directory's BUILD file is broken: this image evaluates alone
        return None
    images: list[Target] = []
    fragments: list[str | None] = []
    for tgt in candidates:
        found = flake_image(tgt)
        if found is None:
            continue
        image, theirs = found
        if image.system.value != system or any(r.directory != directory or not shareable(r) for r in theirs):
            continue
        if tgt.address != field_set.address:
            try:
                their_sources = await flake_files(image, theirs)
            except Exception:  # its own evaluation reports it
                continue
            if their_sources.digest != sources.digest:
                continue
        images.append(tgt)
        fragments += [r.fragment for r in theirs]
    if len(images) < 2:
        return None  # its own evaluation is as cheap
    shared = SharedFlake(directory, system, sources.digest, sorted_fragments(fragments))
    asked = [metadata_evaluation(shared, field_set.address)]
    if system is None:
        asked.append(system_evaluation(shared, field_set.address))
    results = await engine.execute_all(evaluation_process(e, nix, env) for e in asked)
    if any(r.exit_code != 0 for r in results):
        return None
    url = locked_url(results[0].stdout)
    resolved = system or config_system(results[1].stdout)
    if url is None or resolved is None:
        return None
    evaluation = outputs_evaluation(shared, url, resolved, field_set.address)
    (result,) = await engine.execute_all([evaluation_process(evaluation, nix, env)])
    by_fragment = shared_flake_derivations(shared, result.exit_code, result.stdout)
    if by_fragment is None:
        return None
    return SharedEvaluation(f"{directory}/flake.nix", by_fragment, tuple(images), flake=True)


async def evaluate_derivations(
    field_set: NixOciImageFieldSet, nix: NixTools, env: LayerforgeEnv
) -> tuple[Derivations, Derivations, SharedEvaluation | None]:
    """The derivations of the image's closure and of its copy-to-root attrs, evaluated now,
    and the shared evaluation they came from, if any."""
    address, attrs = field_set.address, tuple(field_set.copy_to_root_attrs.value or ())
    system = field_set.system.value
    none = Derivations(())
    if field_set.nix_file.value:
        sources = await dependency_files(address, field_set.nix_file)
        shared = await evaluate_shared(field_set, sources, nix, env)
        own = shared.derivations_of(field_set) if shared is not None else None
        if own is not None:
            return (*own, shared)
        path, argstrs = field_set.nix_file.file_path, tuple((field_set.argstrs.value or {}).items())

        def evaluation(own: tuple[str, ...], field: str) -> NixEvaluation:
            return NixEvaluation.nix_file(
                path, attrs=own, argstrs=argstrs, digest=sources.digest, address=address, field=field, system=system
            )

        evaluations = [evaluation((field_set.attr.value,) if field_set.attr.value else (), "nix_file")]
        if attrs:
            evaluations.append(evaluation(attrs, "copy_to_root_attrs"))
        results = await evaluate_all(evaluations, nix, env)
        return results[0], results[1] if attrs else none, None
    if not field_set.flake.value:
        return none, none, None
    refs = field_set.flake_refs()
    sources = await flake_files(field_set, refs)
    shared_flake = await evaluate_shared_flake(field_set, refs, sources, nix, env)
    own = shared_flake.derivations_of(field_set) if shared_flake is not None else None
    if own is not None:
        return (*own, shared_flake)
    evaluations = [NixEvaluation.flake(refs[0], sources.digest, address, "flake", system)]
    evaluations += [NixEvaluation.flake(r, sources.digest, address, "copy_to_root_attrs", system) for r in refs[1:]]
    results = await evaluate_all(evaluations, nix, env)
    return results[0], Derivations(tuple(sorted({o for r in results[1:] for o in r.outputs}))), None


async def provenance_files(field_set: NixOciImageFieldSet) -> Snapshot | None:
    """The Nix file or flake files the provenance of an `sbom` image records (each by its
    sha256): the sources its evaluation read, for the assembly's sandbox. None otherwise."""
    if not field_set.sbom.value:
        return None
    if field_set.nix_file.value:
        return await dependency_files(field_set.address, field_set.nix_file)
    if not field_set.flake.value:
        return None
    return await flake_files(field_set, field_set.flake_refs())
