"""`package` and `run` of nix_oci_image. The package rule's body is nix/package.py's (see
there); here only its awaits: the base, the evaluation, the plan (with the images of its
shared evaluation: shared_plan.py; batched for one image when it has no neighbour:
neighbours.py), the layer jobs, the assembly."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, CreateDigest, DigestSubset, FileContent, MergeDigests, PathGlobs
from pants.engine.rules import collect_rules, rule
from pants.engine.target import Target

from layerforge_pants.goals import (  # noqa: F401  (rules awaited through the engine)
    dependency_rules,
    engine,
    logged_process_rules,
    roles,
    run_rules,
)
from layerforge_pants.goals.dependency import ImageDependencyRequest
from layerforge_pants.goals.logged_process import LoggedProcess
from layerforge_pants.goals.package import RecordLayers
from layerforge_pants.goals.roles import BASE
from layerforge_pants.goals.run import ImageRunRequest
from layerforge_pants.goals.subsystem import Layerforge
from layerforge_pants.goals.tool import LayerforgeEnv, LayerforgeProcess, NixTools, checked
from layerforge_pants.goals.tool_rules import package_with
from layerforge_pants.nix import package
from layerforge_pants.nix.evaluate import SharedEvaluation, evaluate_derivations, provenance_files
from layerforge_pants.nix.neighbours import PER_IMAGE, has_neighbour
from layerforge_pants.nix.package import (
    PLAN,
    SHALLOW_MISSING,
    NixOciImageFieldSet,
    assemble_argv,
    from_image_args,
    layer_blobs,
    layer_json_glob,
    layer_requests,
    listed_layers,
    unique_blobs,
)
from layerforge_pants.nix.run import NixOciImageRunFieldSet
from layerforge_pants.nix.shared_plan import ARGVS, plan_batch


@rule(desc="Package nix_oci_image")
async def package_nix_oci_image(
    field_set: NixOciImageFieldSet, tool: Layerforge, nix: NixTools, env: LayerforgeEnv
) -> BuiltPackage:
    names = field_set.names(tool)
    base_digest, from_image = EMPTY_DIGEST, ()

    def base_request(shallow: bool) -> ImageDependencyRequest:
        return ImageDependencyRequest(
            field_set.address,
            "base_image",
            field_set.base_image.value or "",
            "base",
            allowed=roles.allowed(BASE),
            shallow=shallow,
        )

    if field_set.base_image.value:
        base = await engine.image_dependency(base_request(True))
        base_digest, from_image = base.digest, from_image_args(base.layout_ref)
    roots, copy_to_root, evaluation = await evaluate_derivations(field_set, nix, env)
    fields = field_set.error_fields()
    together = None if from_image else await plan_together(field_set, evaluation, tool)
    if together is not None:
        plan_content = together
        plan_digest = await engine.create(CreateDigest([FileContent(PLAN, together)]))
    else:
        alone = () if await has_neighbour() else (PER_IMAGE,)
        plan_request = LayerforgeProcess(
            argv=(*field_set.plan_argv(names.ref, roots.outputs, copy_to_root.outputs), *alone, *from_image),
            description=f"Plan the layers of {field_set.address}",
            input_digest=base_digest,
            output_files=(PLAN,),
        )
        process = await engine.layerforge_process(plan_request)
        result = await engine.execute(process)
        if result.exit_code != 0 and from_image and SHALLOW_MISSING in result.stderr:
            # The plan looks into the base's files (an entrypoint or account only the base has):
            # plan on the complete base; the plan is the same, the assembly stays shallow.
            full = await engine.image_dependency(base_request(False))
            process = await engine.layerforge_process(dataclasses.replace(plan_request, input_digest=full.digest))
            result = await engine.execute(process)
        plan_digest = checked(result, process.description, field_set.address, fields).output_digest
        (plan_file,) = await engine.contents(plan_digest)
        plan_content = plan_file.content
    requests = layer_requests(plan_content, field_set.address)
    processes = await engine.layerforge_processes(requests)
    # Each layer job logs one line when it ran (see goals/logged_process.py).
    results = [r.result for r in await engine.logged_processes(LoggedProcess(p) for p in processes)]
    layers = [checked(r, p.description, field_set.address, fields) for r, p in zip(results, processes)]
    # The assembly reads each layer's layer.json only; the blobs go from the layer outputs
    # straight into the image's digest (checked, never copied: see layer_blob).
    entries = await engine.entries_all(r.output_digest for r in layers)
    metas = await engine.subsets(DigestSubset(r.output_digest, layer_json_glob(q)) for r, q in zip(layers, requests))
    meta_files = await engine.contents_all(metas)
    layout = field_set.layout_dir()
    per_layer = [layer_blobs(e, c, q, layout) for e, c, q in zip(entries, meta_files, requests)]
    blob_digest = await engine.create(CreateDigest(unique_blobs([b for bs in per_layer for b in bs])))
    prefixed = await engine.add_prefixes(AddPrefix(m, f"l{i}") for i, m in enumerate(metas))
    # An `sbom` image's provenance records its Nix file or flake files: they are in the sandbox.
    recorded = await provenance_files(field_set)
    sources = [] if recorded is None else [recorded.digest]
    assemble_input = await engine.merge(MergeDigests([plan_digest, base_digest, *prefixed, *sources]))
    provenance = field_set.provenance_argv()
    argv = assemble_argv(layout, f"{names.repository}:{names.ref}", from_image, requests, provenance)
    description = f"Assemble the image of {field_set.address}"
    # The build record takes what each layer holds from its layer directory (written once, by
    # the layer's process), not from its blob: the assembly writes it when every layer has
    # one, else a record process reads the blobs of those without.
    record_args, unlisted = listed_layers(meta_files, requests, per_layer)
    record_digest = EMPTY_DIGEST  # the assembly writes the record: no record process, no input
    if unlisted:
        unlisted_digest = await engine.create(CreateDigest(unique_blobs(unlisted)))
        record_digest = await engine.merge(MergeDigests([*prefixed, unlisted_digest]))
    record = RecordLayers(record_digest, record_args, in_package=not unlisted)
    return await package_with(argv, description, assemble_input, layout, names, add=blob_digest, record=record)


async def plan_together(
    field_set: NixOciImageFieldSet, evaluation: SharedEvaluation | None, tool: Layerforge
) -> bytes | None:
    """The image's plan file from the one plan process of the images of its shared evaluation
    (see shared_plan.py), or None: it plans alone."""
    if evaluation is None:
        return None

    def argv_of(target: Target) -> Callable[[], list[str] | None]:
        def argv() -> list[str] | None:
            image = NixOciImageFieldSet.create(target)
            own = evaluation.derivations_of(image)
            if image.base_image.value or own is None:
                return None
            return image.plan_argv(image.names(tool).ref, own[0].outputs, own[1].outputs)

        return argv

    images = [(t.address, argv_of(t)) for t in evaluation.images if NixOciImageFieldSet.is_applicable(t)]
    batch = plan_batch(evaluation.source, images)
    own = batch.plan_of(field_set.address) if batch is not None else None
    if batch is None or own is None:
        return None
    argvs = await engine.create(CreateDigest([FileContent(ARGVS, batch.document)]))
    request = LayerforgeProcess(
        argv=("nix-plans", ARGVS), description=batch.description, input_digest=argvs, output_files=batch.outs
    )
    result = await engine.execute(await engine.layerforge_process(request))
    if result.exit_code != 0:
        return None  # each image plans alone, and a failing one says so
    files = await engine.contents(await engine.subset(DigestSubset(result.output_digest, PathGlobs([own]))))
    return files[0].content if len(files) == 1 else None


@rule(desc="Run nix_oci_image")
async def run_nix_oci_image(field_set: NixOciImageRunFieldSet) -> RunRequest:
    return await engine.run_image(ImageRunRequest(field_set.address, NixOciImageFieldSet))


def rules() -> list[object]:
    return [*collect_rules(), *package.rules(), *NixOciImageRunFieldSet.rules()]
