"""The engine adapter for Pants 2.30+: each awaitable the backend's rules use, in the
call-by-name idiom (`await some_rule(x, **implicitly())`, `concurrently(...)`; `Get` is
deprecated in 2.30 and gone from 2.32). `gets.py` defines the same helpers, with the same
signatures, for Pants 2.17-2.29 (tests/test_pants_rule_modules.py holds the two together).

The backend's own rules are named through the `layerforge_pants` package
(`layerforge_pants.goals.tool_rules.layerforge_process`): Pants reads a rule's awaits when
its `@rule` decorator runs, and every rule module imports the rule modules whose rules it
awaits (through this adapter) before its own, so each name resolves by then; importing them
here instead would be an import cycle."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import (
    VenvPex,
    VenvPexProcess,
    VenvPexRequest,
    create_venv_pex,
    setup_venv_pex_process,
)
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.base.specs import RawSpecsWithoutFileOwners
from pants.core.environments.target_types import EnvironmentTarget  # noqa: F401  (the engine exports it: its import path moved in 2.30)
from pants.core.goals.package import BuiltPackage, PackageFieldSet, build_package
from pants.core.goals.run import RunRequest
from pants.core.util_rules.env_vars import environment_vars_subset
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest, determine_source_files
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, find_binary
from pants.engine.addresses import Addresses, UnparsedAddressInputs
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    MergeDigests,
    PathGlobs,
    Paths,
    RemovePrefix,
    Snapshot,
)
from pants.engine.internals.graph import (
    find_valid_field_sets,
    resolve_target,
    resolve_targets,
    resolve_unparsed_address_inputs,
)
from pants.engine.internals.graph import transitive_targets as resolve_transitive_targets
from pants.engine.intrinsics import (
    add_prefix as add_digest_prefix,
)
from pants.engine.intrinsics import (
    create_digest,
    digest_subset_to_digest,
    digest_to_snapshot,
    execute_process,
    get_digest_contents,
    get_digest_entries,
    merge_digests,
    path_globs_to_paths,
)
from pants.engine.intrinsics import (
    remove_prefix as remove_digest_prefix,
)
from pants.engine.process import FallibleProcessResult, Process, ProcessResult, execute_process_or_raise
from pants.engine.rules import concurrently, implicitly
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    Targets,
    TransitiveTargets,
    TransitiveTargetsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)

import layerforge_pants
from layerforge_pants.goals.dependency import (
    ImageDependency,
    ImageDependencyRequest,
)
from layerforge_pants.goals.logged_process import LoggedProcess, LoggedResult
from layerforge_pants.goals.pull import PulledImage, RemoteImageRequest
from layerforge_pants.goals.run import ImageRunRequest
from layerforge_pants.goals.tool import LayerforgeProcess

# -- processes -------------------------------------------------------------------------------


async def execute(process: Process) -> FallibleProcessResult:
    return await execute_process(process, **implicitly())


async def execute_all(processes: Iterable[Process]) -> tuple[FallibleProcessResult, ...]:
    return await concurrently(execute_process(p, **implicitly()) for p in processes)


async def execute_or_raise(process: Process) -> ProcessResult:
    return await execute_process_or_raise(**implicitly({process: Process}))


async def venv_pex(request: VenvPexRequest) -> VenvPex:
    return await create_venv_pex(request, **implicitly())


async def venv_pex_and_python(
    request: VenvPexRequest, constraints: InterpreterConstraints
) -> tuple[VenvPex, PythonExecutable | None]:
    """The venv PEX and the interpreter it runs on (None where this Pants cannot tell)."""
    return await create_venv_pex(request, **implicitly()), None


async def venv_pex_process(request: VenvPexProcess) -> Process:
    return await setup_venv_pex_process(request, **implicitly())


async def find_binaries(requests: Iterable[BinaryPathRequest]) -> tuple[BinaryPaths, ...]:
    return await concurrently(find_binary(r, **implicitly()) for r in requests)


async def environment(names: Sequence[str]) -> EnvironmentVars:
    return await environment_vars_subset(EnvironmentVarsRequest(names), **implicitly())


# -- digests and files -----------------------------------------------------------------------


async def subset(request: DigestSubset) -> Digest:
    return await digest_subset_to_digest(request)


async def subsets(requests: Iterable[DigestSubset]) -> tuple[Digest, ...]:
    return await concurrently(digest_subset_to_digest(r) for r in requests)


async def merge(request: MergeDigests) -> Digest:
    return await merge_digests(request)


async def merges(requests: Iterable[MergeDigests]) -> tuple[Digest, ...]:
    return await concurrently(merge_digests(r) for r in requests)


async def add_prefix(request: AddPrefix) -> Digest:
    return await add_digest_prefix(request)


async def add_prefixes(requests: Iterable[AddPrefix]) -> tuple[Digest, ...]:
    return await concurrently(add_digest_prefix(r) for r in requests)


async def remove_prefix(request: RemovePrefix) -> Digest:
    return await remove_digest_prefix(request)


async def create(request: CreateDigest) -> Digest:
    return await create_digest(request)


async def contents(digest: Digest) -> DigestContents:
    return await get_digest_contents(digest)


async def contents_all(digests: Iterable[Digest]) -> tuple[DigestContents, ...]:
    return await concurrently(get_digest_contents(d) for d in digests)


async def entries_all(digests: Iterable[Digest]) -> tuple[DigestEntries, ...]:
    return await concurrently(get_digest_entries(d) for d in digests)


async def glob_snapshot(globs: PathGlobs) -> Snapshot:
    return await digest_to_snapshot(**implicitly(globs))


async def merged_snapshot(request: MergeDigests) -> Snapshot:
    return await digest_to_snapshot(await merge_digests(request))


async def glob_paths(globs: PathGlobs) -> Paths:
    return await path_globs_to_paths(globs)


# -- targets and packages --------------------------------------------------------------------


async def transitive_targets(request: TransitiveTargetsRequest) -> TransitiveTargets:
    return await resolve_transitive_targets(request, **implicitly())


async def source_files(request: SourceFilesRequest) -> SourceFiles:
    return await determine_source_files(request)


async def addresses(inputs: UnparsedAddressInputs) -> Addresses:
    return await resolve_unparsed_address_inputs(inputs, **implicitly())


async def target(request: WrappedTargetRequest) -> WrappedTarget:
    return await resolve_target(request, **implicitly())


async def field_sets(request: FieldSetsPerTargetRequest) -> FieldSetsPerTarget:
    return await find_valid_field_sets(request, **implicitly())


async def targets(specs: RawSpecsWithoutFileOwners) -> Targets:
    return await resolve_targets(**implicitly(specs))


async def package(field_set: PackageFieldSet) -> BuiltPackage:
    return await build_package(**implicitly({field_set: PackageFieldSet}))


# -- the backend's own rules -----------------------------------------------------------------


async def layerforge_process(request: LayerforgeProcess) -> Process:
    return await layerforge_pants.goals.tool_rules.layerforge_process(request, **implicitly())


async def layerforge_processes(requests: Iterable[LayerforgeProcess]) -> tuple[Process, ...]:
    return await concurrently(layerforge_pants.goals.tool_rules.layerforge_process(r, **implicitly()) for r in requests)


async def logged_processes(requests: Iterable[LoggedProcess]) -> tuple[LoggedResult, ...]:
    return await concurrently(
        layerforge_pants.goals.logged_process_rules.run_logged_process(r, **implicitly()) for r in requests
    )


async def image_dependency(request: ImageDependencyRequest) -> ImageDependency:
    return await layerforge_pants.goals.dependency_rules.package_image_dependency(request)


async def image_dependencies(requests: Iterable[ImageDependencyRequest]) -> tuple[ImageDependency, ...]:
    return await concurrently(layerforge_pants.goals.dependency_rules.package_image_dependency(r) for r in requests)


async def pull(request: RemoteImageRequest) -> PulledImage:
    return await layerforge_pants.goals.pull_rules.pull_remote_image(request)


async def run_image(request: ImageRunRequest) -> RunRequest:
    return await layerforge_pants.goals.run_rules.run_image(request, **implicitly())
