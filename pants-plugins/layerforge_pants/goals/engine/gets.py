"""The engine adapter for Pants 2.17-2.29: each awaitable the backend's rules use, as `Get`s and
`MultiGet`s. `calls.py` defines the same helpers, with the same signatures, in the
call-by-name idiom of Pants 2.30+ (tests/test_pants_rule_modules.py holds the two together);
`engine/__init__.py` exports one of them. Pants follows a rule into the helpers it awaits
and collects their `Get`s as the rule's own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import VenvPex, VenvPexProcess, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.base.specs import RawSpecsWithoutFileOwners
from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.goals.run import RunRequest
from pants.core.util_rules.environments import EnvironmentTarget  # noqa: F401  (the engine exports it: its import path moved in 2.30)
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
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
from pants.engine.process import FallibleProcessResult, Process, ProcessResult
from pants.engine.rules import Get, MultiGet
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    Targets,
    TransitiveTargets,
    TransitiveTargetsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)

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
    return await Get(FallibleProcessResult, Process, process)


async def execute_all(processes: Iterable[Process]) -> tuple[FallibleProcessResult, ...]:
    return await MultiGet(Get(FallibleProcessResult, Process, p) for p in processes)


async def execute_or_raise(process: Process) -> ProcessResult:
    return await Get(ProcessResult, Process, process)


async def venv_pex(request: VenvPexRequest) -> VenvPex:
    return await Get(VenvPex, VenvPexRequest, request)


async def venv_pex_and_python(
    request: VenvPexRequest, constraints: InterpreterConstraints
) -> tuple[VenvPex, PythonExecutable | None]:
    """The venv PEX and the interpreter it runs on (None where this Pants cannot tell)."""
    pex, python = await MultiGet(
        Get(VenvPex, VenvPexRequest, request), Get(PythonExecutable, InterpreterConstraints, constraints)
    )
    return pex, python


async def venv_pex_process(request: VenvPexProcess) -> Process:
    return await Get(Process, VenvPexProcess, request)


async def find_binaries(requests: Iterable[BinaryPathRequest]) -> tuple[BinaryPaths, ...]:
    return await MultiGet(Get(BinaryPaths, BinaryPathRequest, r) for r in requests)


async def environment(names: Sequence[str]) -> EnvironmentVars:
    return await Get(EnvironmentVars, EnvironmentVarsRequest(names))


# -- digests and files -----------------------------------------------------------------------


async def subset(request: DigestSubset) -> Digest:
    return await Get(Digest, DigestSubset, request)


async def subsets(requests: Iterable[DigestSubset]) -> tuple[Digest, ...]:
    return await MultiGet(Get(Digest, DigestSubset, r) for r in requests)


async def merge(request: MergeDigests) -> Digest:
    return await Get(Digest, MergeDigests, request)


async def merges(requests: Iterable[MergeDigests]) -> tuple[Digest, ...]:
    return await MultiGet(Get(Digest, MergeDigests, r) for r in requests)


async def add_prefix(request: AddPrefix) -> Digest:
    return await Get(Digest, AddPrefix, request)


async def add_prefixes(requests: Iterable[AddPrefix]) -> tuple[Digest, ...]:
    return await MultiGet(Get(Digest, AddPrefix, r) for r in requests)


async def remove_prefix(request: RemovePrefix) -> Digest:
    return await Get(Digest, RemovePrefix, request)


async def create(request: CreateDigest) -> Digest:
    return await Get(Digest, CreateDigest, request)


async def contents(digest: Digest) -> DigestContents:
    return await Get(DigestContents, Digest, digest)


async def contents_all(digests: Iterable[Digest]) -> tuple[DigestContents, ...]:
    return await MultiGet(Get(DigestContents, Digest, d) for d in digests)


async def entries_all(digests: Iterable[Digest]) -> tuple[DigestEntries, ...]:
    return await MultiGet(Get(DigestEntries, Digest, d) for d in digests)


async def glob_snapshot(globs: PathGlobs) -> Snapshot:
    return await Get(Snapshot, PathGlobs, globs)


async def merged_snapshot(request: MergeDigests) -> Snapshot:
    return await Get(Snapshot, MergeDigests, request)


async def glob_paths(globs: PathGlobs) -> Paths:
    return await Get(Paths, PathGlobs, globs)


# -- targets and packages --------------------------------------------------------------------


async def transitive_targets(request: TransitiveTargetsRequest) -> TransitiveTargets:
    return await Get(TransitiveTargets, TransitiveTargetsRequest, request)


async def source_files(request: SourceFilesRequest) -> SourceFiles:
    return await Get(SourceFiles, SourceFilesRequest, request)


async def addresses(inputs: UnparsedAddressInputs) -> Addresses:
    return await Get(Addresses, UnparsedAddressInputs, inputs)


async def target(request: WrappedTargetRequest) -> WrappedTarget:
    return await Get(WrappedTarget, WrappedTargetRequest, request)


async def field_sets(request: FieldSetsPerTargetRequest) -> FieldSetsPerTarget:
    return await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest, request)


async def targets(specs: RawSpecsWithoutFileOwners) -> Targets:
    return await Get(Targets, RawSpecsWithoutFileOwners, specs)


async def package(field_set: PackageFieldSet) -> BuiltPackage:
    return await Get(BuiltPackage, PackageFieldSet, field_set)


# -- the backend's own rules -----------------------------------------------------------------


async def layerforge_process(request: LayerforgeProcess) -> Process:
    return await Get(Process, LayerforgeProcess, request)


async def layerforge_processes(requests: Iterable[LayerforgeProcess]) -> tuple[Process, ...]:
    return await MultiGet(Get(Process, LayerforgeProcess, r) for r in requests)


async def logged_processes(requests: Iterable[LoggedProcess]) -> tuple[LoggedResult, ...]:
    return await MultiGet(Get(LoggedResult, LoggedProcess, r) for r in requests)


async def image_dependency(request: ImageDependencyRequest) -> ImageDependency:
    return await Get(ImageDependency, ImageDependencyRequest, request)


async def image_dependencies(requests: Iterable[ImageDependencyRequest]) -> tuple[ImageDependency, ...]:
    return await MultiGet(Get(ImageDependency, ImageDependencyRequest, r) for r in requests)


async def pull(request: RemoteImageRequest) -> PulledImage:
    return await Get(PulledImage, RemoteImageRequest, request)


async def run_image(request: ImageRunRequest) -> RunRequest:
    return await Get(RunRequest, ImageRunRequest, request)
