"""The rules of nix_oci_image: evaluation, `package` and `run` (Pants 2.30+: call-by-name).
The package rule's body is nix_package's (see there); here only its awaits."""

from __future__ import annotations

import dataclasses
import os

from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, CreateDigest, DigestSubset, MergeDigests, PathGlobs, Snapshot
from pants.engine.intrinsics import (
    add_prefix,
    create_digest,
    digest_subset_to_digest,
    digest_to_snapshot,
    execute_process,
    get_digest_contents,
    get_digest_entries,
    merge_digests,
    path_globs_to_paths,
)
from pants.engine.rules import collect_rules, concurrently, implicitly, rule
from pants.engine.target import InvalidFieldException

from layerforge_pants.image_dependency import ImageDependencyRequest
from layerforge_pants.image_run import ImageRunRequest
from layerforge_pants.nix_eval import Derivations, NixEvaluation, derivations, evaluation_process
from layerforge_pants.nix_flake import FlakeRef, parse_flake_ref
from layerforge_pants.nix_package import (
    PLAN,
    SHALLOW_MISSING,
    NixOciImageFieldSet,
    assemble_argv,
    from_image_args,
    layer_blobs,
    layer_json_glob,
    layer_requests,
    unique_blobs,
)
from layerforge_pants.nix_run import NixOciImageRunFieldSet
from layerforge_pants.remote_target import RemoteOciImageTarget
from layerforge_pants.rules_calls.images import package_image_dependency, run_image
from layerforge_pants.rules_calls.tool import dependency_files, layerforge_process, package_with
from layerforge_pants.subsystem import Layerforge
from layerforge_pants.tool import LayerforgeEnv, LayerforgeProcess, NixTools, checked


@rule(desc="Evaluate Nix derivations")
async def evaluate(request: NixEvaluation, nix: NixTools, env: LayerforgeEnv) -> Derivations:
    return derivations(request, await execute_process(evaluation_process(request, nix, env), **implicitly()))


async def flake_files(field_set: NixOciImageFieldSet, refs: tuple[FlakeRef, ...]) -> Snapshot:
    """The flake(s)' files: `flake_sources`, or every file under each flake's directory;
    plus files from dependencies. Each flake.nix must be there, and its flake.lock if it has one."""
    if field_set.flake_sources.value is not None:
        snapshot = await dependency_files(field_set.address, field_set.flake_sources)
        field = field_set.flake_sources.alias
    else:
        dirs = sorted({r.directory for r in refs})
        own = await digest_to_snapshot(**implicitly(PathGlobs(["**/*" if d == "." else f"{d}/**/*" for d in dirs])))
        deps = await dependency_files(field_set.address)
        snapshot = await digest_to_snapshot(await merge_digests(MergeDigests([own.digest, deps.digest])))
        field = field_set.flake.alias
    locks = await path_globs_to_paths(PathGlobs([os.path.normpath(f"{r.directory}/flake.lock") for r in refs]))
    for ref in refs:
        for name in ("flake.nix", "flake.lock"):
            path = os.path.normpath(f"{ref.directory}/{name}")
            if path not in snapshot.files and (name == "flake.nix" or path in locks.files):
                raise InvalidFieldException(
                    f"The `{field}` field of {field_set.address} does not give {path}, which the flake in "
                    f"{ref.directory}/ needs."
                )
    return snapshot


async def evaluate_derivations(field_set: NixOciImageFieldSet) -> tuple[Derivations, Derivations]:
    """The derivations of the image's closure and of its copy-to-root attrs, evaluated now."""
    address, attrs = field_set.address, tuple(field_set.copy_to_root_attrs.value or ())
    system = field_set.system.value
    none = Derivations(())
    if field_set.nix_file.value:
        sources = await dependency_files(address, field_set.nix_file)
        path, argstrs = field_set.nix_file.file_path, tuple((field_set.argstrs.value or {}).items())

        def evaluation(own: tuple[str, ...], field: str) -> NixEvaluation:
            return NixEvaluation.nix_file(
                path, attrs=own, argstrs=argstrs, digest=sources.digest, address=address, field=field, system=system
            )

        root = evaluation((field_set.attr.value,) if field_set.attr.value else (), "nix_file")
        if not attrs:
            return await evaluate(root, **implicitly()), none
        ctr = evaluation(attrs, "copy_to_root_attrs")
        return await concurrently(evaluate(root, **implicitly()), evaluate(ctr, **implicitly()))
    if not field_set.flake.value:
        return none, none
    ref = parse_flake_ref(field_set.flake.value, address, "flake")
    ctr_refs = tuple(parse_flake_ref(a, address, "copy_to_root_attrs") for a in attrs)
    sources = await flake_files(field_set, (ref, *ctr_refs))
    evaluations = [NixEvaluation.flake(ref, sources.digest, address, "flake", system)]
    evaluations += [NixEvaluation.flake(r, sources.digest, address, "copy_to_root_attrs", system) for r in ctr_refs]
    results = await concurrently(evaluate(e, **implicitly()) for e in evaluations)
    return results[0], Derivations(tuple(sorted({o for r in results[1:] for o in r.outputs})))


@rule(desc="Package nix_oci_image")
async def package_nix_oci_image(field_set: NixOciImageFieldSet, tool: Layerforge) -> BuiltPackage:
    names = field_set.names(tool)
    base_digest, from_image = EMPTY_DIGEST, ()

    def base_request(shallow: bool) -> ImageDependencyRequest:
        return ImageDependencyRequest(
            field_set.address,
            "base_image",
            field_set.base_image.value or "",
            "base",
            allowed=("nix_oci_image", RemoteOciImageTarget.alias),
            shallow=shallow,
        )

    if field_set.base_image.value:
        base = await package_image_dependency(base_request(True))
        base_digest, from_image = base.digest, from_image_args(base.layout_ref)
    roots, copy_to_root = await evaluate_derivations(field_set)
    fields = field_set.error_fields()
    plan_request = LayerforgeProcess(
        argv=(*field_set.plan_argv(names.ref, roots.outputs, copy_to_root.outputs), *from_image),
        description=f"Plan the layers of {field_set.address}",
        input_digest=base_digest,
        output_files=(PLAN,),
    )
    process = await layerforge_process(plan_request, **implicitly())
    result = await execute_process(process, **implicitly())
    if result.exit_code != 0 and from_image and SHALLOW_MISSING in result.stderr:
        # The plan looks into the base's files (an entrypoint or account only the base has):
        # plan on the complete base; the plan is the same, the assembly stays shallow.
        full = await package_image_dependency(base_request(False))
        process = await layerforge_process(dataclasses.replace(plan_request, input_digest=full.digest), **implicitly())
        result = await execute_process(process, **implicitly())
    planned = checked(result, process.description, field_set.address, fields)
    (plan_file,) = await get_digest_contents(planned.output_digest)
    requests = layer_requests(plan_file.content, field_set.address)
    processes = await concurrently(layerforge_process(r, **implicitly()) for r in requests)
    results = await concurrently(execute_process(p, **implicitly()) for p in processes)
    layers = [checked(r, p.description, field_set.address, fields) for r, p in zip(results, processes)]
    # The assembly reads each layer's layer.json only; the blobs go from the layer outputs
    # straight into the image's digest (checked, never copied: see layer_blob).
    entries = await concurrently(get_digest_entries(r.output_digest) for r in layers)
    metas = await concurrently(
        digest_subset_to_digest(DigestSubset(r.output_digest, layer_json_glob(q))) for r, q in zip(layers, requests)
    )
    meta_files = await concurrently(get_digest_contents(m) for m in metas)
    layout = field_set.layout_dir()
    blobs = [b for e, c, q in zip(entries, meta_files, requests) for b in layer_blobs(e, c, q, layout)]
    blob_digest = await create_digest(CreateDigest(unique_blobs(blobs)))
    prefixed = await concurrently(add_prefix(AddPrefix(m, f"l{i}")) for i, m in enumerate(metas))
    assemble_input = await merge_digests(MergeDigests([planned.output_digest, base_digest, *prefixed]))
    argv = assemble_argv(layout, f"{names.repository}:{names.ref}", from_image, requests)
    description = f"Assemble the image of {field_set.address}"
    return await package_with(argv, description, assemble_input, layout, names, add=blob_digest)


@rule(desc="Run nix_oci_image")
async def run_nix_oci_image(field_set: NixOciImageRunFieldSet) -> RunRequest:
    return await run_image(ImageRunRequest(field_set.address, NixOciImageFieldSet), **implicitly())


def rules():
    return collect_rules()
