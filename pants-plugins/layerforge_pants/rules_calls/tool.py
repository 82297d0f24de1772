"""Rules and helpers that run the layerforge tool (Pants 2.30+: call-by-name)."""

from __future__ import annotations

from collections.abc import Mapping

from pants.backend.python.util_rules.pex import create_venv_pex, setup_venv_pex_process
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.goals.package import BuiltPackage
from pants.core.util_rules.env_vars import environment_vars_subset
from pants.core.util_rules.source_files import determine_source_files
from pants.core.util_rules.system_binaries import find_binary
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, Digest, MergeDigests, Snapshot
from pants.engine.internals.graph import transitive_targets
from pants.engine.intrinsics import digest_subset_to_digest, execute_process, get_digest_contents, merge_digests
from pants.engine.process import FallibleProcessResult, Process, execute_process_or_raise
from pants.engine.rules import collect_rules, concurrently, implicitly, rule
from pants.engine.target import SourcesField, TransitiveTargetsRequest

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
    host = await environment_vars_subset(EnvironmentVarsRequest(["PATH"]), **implicitly())
    requests = nix_tool_requests(nix_search_path(tool, host))
    return nix_tools(await concurrently(find_binary(r, **implicitly()) for r in requests))


@rule
async def layerforge_env(tool: Layerforge, nix: NixTools) -> LayerforgeEnv:
    return tool_env(await environment_vars_subset(EnvironmentVarsRequest(tool.env_vars), **implicitly()), nix)


@rule
async def layerforge_process(
    request: LayerforgeProcess, tool: Layerforge, env: LayerforgeEnv, pex_env: PexEnvironment
) -> Process:
    pex = await create_venv_pex(tool_venv_request(tool, pex_env), **implicitly())
    process = await setup_venv_pex_process(venv_pex_process(pex, request, env), **implicitly())
    return speculating(native_argv(process, pex, request), tool)


async def run_layerforge(
    request: LayerforgeProcess, address: Address, fields: Mapping[str, str]
) -> FallibleProcessResult:
    """Run ``request``; a failure raises :class:`LayerforgeFailed` (see :func:`checked`)."""
    process = await layerforge_process(request, **implicitly())
    return checked(await execute_process(process, **implicitly()), process.description, address, fields)


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
    process = await layerforge_process(package_process(argv, description, input_digest, layout), **implicitly())
    result = await execute_process_or_raise(**implicitly({process: Process}))
    output = await digest_subset_to_digest(layout_subset(result, layout))
    if add != EMPTY_DIGEST:
        output = await merge_digests(MergeDigests([output, add]))
    contents = await get_digest_contents(await digest_subset_to_digest(index_json(output, layout)))
    return built_package(output, layout, names, manifest_digest(contents, names.ref))


async def dependency_files(address: Address, *own: SourcesField) -> Snapshot:
    """The files of ``address``'s transitive dependencies (codegen applied), plus ``own``."""
    transitive = await transitive_targets(TransitiveTargetsRequest([address]), **implicitly())
    sources = await determine_source_files(sources_request(transitive, *own))
    return sources.snapshot


def rules():
    return collect_rules()
