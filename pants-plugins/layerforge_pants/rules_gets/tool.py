"""Rules and helpers that run the layerforge tool (Pants 2.17-2.29: `Get`)."""

from __future__ import annotations

from collections.abc import Mapping

from pants.backend.python.util_rules.pex import VenvPex, VenvPexProcess, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.goals.package import BuiltPackage
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestContents, DigestSubset, MergeDigests, Snapshot
from pants.engine.process import FallibleProcessResult, Process, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import SourcesField, TransitiveTargets, TransitiveTargetsRequest

from layerforge_pants.dependency_files import sources_request
from layerforge_pants.image_package import (
    ImageNames,
    built_package,
    index_json,
    layout_subset,
    manifest_digest,
    package_process,
)
from layerforge_pants.subsystem import Layerforge
from layerforge_pants.tool import (
    LayerforgeEnv,
    LayerforgeProcess,
    NixTools,
    checked,
    native_argv,
    nix_search_path,
    nix_tool_requests,
    nix_tools,
    speculating,
    tool_env,
    tool_venv_request,
    venv_pex_process,
)


@rule
async def find_nix_tools(tool: Layerforge) -> NixTools:
    host = await Get(EnvironmentVars, EnvironmentVarsRequest(["PATH"]))
    found = await MultiGet(
        Get(BinaryPaths, BinaryPathRequest, r) for r in nix_tool_requests(nix_search_path(tool, host))
    )
    return nix_tools(found)


@rule
async def layerforge_env(tool: Layerforge, nix: NixTools) -> LayerforgeEnv:
    return tool_env(await Get(EnvironmentVars, EnvironmentVarsRequest(tool.env_vars)), nix)


@rule
async def layerforge_process(
    request: LayerforgeProcess, tool: Layerforge, env: LayerforgeEnv, pex_env: PexEnvironment
) -> Process:
    pex = await Get(VenvPex, VenvPexRequest, tool_venv_request(tool, pex_env))
    process = await Get(Process, VenvPexProcess, venv_pex_process(pex, request, env))
    return speculating(native_argv(process, pex, request), tool)


async def run_layerforge(
    request: LayerforgeProcess, address: Address, fields: Mapping[str, str]
) -> FallibleProcessResult:
    """Run ``request``; a failure raises :class:`LayerforgeFailed` (see :func:`checked`)."""
    process = await Get(Process, LayerforgeProcess, request)
    return checked(await Get(FallibleProcessResult, Process, process), process.description, address, fields)


async def package_with(
    argv: list[str],
    description: str,
    input_digest: Digest,
    layout: str,
    names: ImageNames,
    *,
    add: Digest = EMPTY_DIGEST,
) -> BuiltPackage:
    """Run one layerforge process that writes the OCI layout ``layout``; the built package,
    with the files of ``add`` (blobs the process was told to leave out) merged in."""
    result = await Get(ProcessResult, LayerforgeProcess, package_process(argv, description, input_digest, layout))
    output = await Get(Digest, DigestSubset, layout_subset(result, layout))
    if add != EMPTY_DIGEST:
        output = await Get(Digest, MergeDigests([output, add]))
    contents = await Get(DigestContents, DigestSubset, index_json(output, layout))
    return built_package(output, layout, names, manifest_digest(contents, names.ref))


async def dependency_files(address: Address, *own: SourcesField) -> Snapshot:
    """The files of ``address``'s transitive dependencies (codegen applied), plus ``own``."""
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest([address]))
    sources = await Get(SourceFiles, SourceFilesRequest, sources_request(transitive, *own))
    return sources.snapshot


def rules():
    return collect_rules()
