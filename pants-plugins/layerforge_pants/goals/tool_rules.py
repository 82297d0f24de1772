"""Rules and helpers that run the layerforge tool: the Nix commands it needs, its
environment, its process (a venv PEX of the project's wheel, the native command first), and
the package process every image kind ends with."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.goals.package import BuiltPackage
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestSubset, MergeDigests, PathGlobs, Snapshot
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import collect_rules, rule
from pants.engine.target import SourcesField, TransitiveTargetsRequest
from pants.util.frozendict import FrozenDict

from layerforge_pants.goals import engine
from layerforge_pants.goals.dependency_files import sources_request
from layerforge_pants.goals.package import (
    ImageNames,
    RecordLayers,
    built_package,
    export_archive_process,
    index_json,
    layout_subset,
    manifest_digest,
    named_argv,
    package_process,
    package_record_args,
    record_path,
    record_process,
)
from layerforge_pants.goals.subsystem import Layerforge, signing_env_names
from layerforge_pants.goals.tool import (
    LayerforgeEnv,
    LayerforgeProcess,
    NixTools,
    RegistryEnv,
    checked,
    native_argv,
    nix_search_path,
    nix_tool_requests,
    nix_tools,
    registry_names_dropped,
    speculating,
    tool_env,
    tool_venv_request,
    venv_pex_process,
)
from layerforge_pants.goals.tool_release import check_default_lockfile, check_resolve


@rule
async def find_nix_tools(tool: Layerforge) -> NixTools:
    host = await engine.environment(["PATH"])
    return nix_tools(await engine.find_binaries(nix_tool_requests(nix_search_path(tool, host))))


@rule
async def layerforge_env(tool: Layerforge, nix: NixTools) -> LayerforgeEnv:
    return tool_env(await engine.environment(tool.env_vars), nix)


@dataclass(frozen=True)
class ToolRelease:
    """The tool's release checked against the plugin's (see ``tool_release.py``)."""


@rule
async def check_tool_release(tool: Layerforge, python_setup: PythonSetup) -> ToolRelease:
    resolve = tool.install_from_resolve
    if not resolve:
        check_default_lockfile()
        return ToolRelease()
    path = python_setup.resolves.get(resolve, "")
    lockfile = None
    if path:
        snapshot = await engine.glob_snapshot(PathGlobs([path]))
        files = await engine.contents(snapshot.digest)
        lockfile = files[0].content.decode(errors="replace") if files else None
    check_resolve(resolve, path or "not in [python].resolves", lockfile)
    return ToolRelease()


@rule
async def registry_env(tool: Layerforge) -> RegistryEnv:
    env = await engine.environment(tool.registry_env_vars)
    names = signing_env_names(tool)
    signing = await engine.environment(names) if names else {}
    return RegistryEnv(FrozenDict(env), FrozenDict(signing))


@rule
async def layerforge_process(
    request: LayerforgeProcess,
    tool: Layerforge,
    env: LayerforgeEnv,
    registry: RegistryEnv,
    pex_env: PexEnvironment,
    _release: ToolRelease,
) -> Process:
    pex = await engine.venv_pex(tool_venv_request(tool, pex_env))
    process = await engine.venv_pex_process(venv_pex_process(pex, request, env, registry))
    return speculating(registry_names_dropped(native_argv(process, pex, request), request, tool), tool)


async def run_layerforge(
    request: LayerforgeProcess, address: Address, fields: Mapping[str, str]
) -> FallibleProcessResult:
    """Run ``request``; a failure raises :class:`LayerforgeFailed` (see :func:`checked`)."""
    process = await engine.layerforge_process(request)
    return checked(await engine.execute(process), process.description, address, fields)


async def package_with(
    argv: list[str],
    description: str,
    input_digest: Digest,
    layout: str,
    names: ImageNames,
    *,
    add: Digest = EMPTY_DIGEST,
    record: RecordLayers | None = None,
) -> BuiltPackage:
    """Run one layerforge process that writes the OCI layout ``layout`` (its entry named
    ``names.image_name``); the built package, with the files of ``add`` (blobs the process
    was told to leave out) merged in, its build record, and its oci-archive when asked for.
    With ``record``, the record reads the contents of those layers from their layer
    directories: the package process writes it itself when it has them all
    (``record.in_package``), else the record's input is the layout without ``add`` plus
    ``record.digest`` (which holds the blobs of any other layers it must read)."""
    inline = record is not None and record.in_package
    own_record = package_record_args(layout, names) if inline else ()
    request = package_process([*named_argv(argv, names), *own_record], description, input_digest, layout)
    if inline:
        request = dataclasses.replace(request, output_files=(record_path(layout),))
    result = await engine.execute_or_raise(await engine.layerforge_process(request))
    output = laid = await engine.subset(layout_subset(result, layout))
    if add != EMPTY_DIGEST:
        output = await engine.merge(MergeDigests([output, add]))
    contents = await engine.contents(await engine.subset(index_json(output, layout)))
    written = [output]
    if inline:
        extras = []
        written.append(await engine.subset(DigestSubset(result.output_digest, PathGlobs([record_path(layout)]))))
    elif record is None:
        extras = [record_process(output, layout, names)]
    else:
        recorded = await engine.merge(MergeDigests([laid, record.digest]))
        extras = [record_process(recorded, layout, names, record.argv)]
    if names.archive:
        extras.append(export_archive_process(output, layout))
    for extra in extras:
        result = await engine.execute_or_raise(await engine.layerforge_process(extra))
        written.append(result.output_digest)
    output = await engine.merge(MergeDigests(written))
    return built_package(output, layout, names, manifest_digest(contents, names.ref))


async def dependency_files(address: Address, *own: SourcesField) -> Snapshot:
    """The files of ``address``'s transitive dependencies (codegen applied), plus ``own``."""
    transitive = await engine.transitive_targets(TransitiveTargetsRequest([address]))
    sources = await engine.source_files(sources_request(transitive, *own))
    return sources.snapshot


def rules() -> list[object]:
    return [*collect_rules()]
