"""Running the layerforge tool (a PEX from the project's wheel) as Pants processes."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, BinaryPathTest
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest
from pants.engine.process import Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from layerforge_pants.subsystem import Layerforge


@dataclass(frozen=True)
class LayerforgeEnv:
    """Environment of layerforge processes: the passed-through variables, and a PATH holding
    the Nix tools when they are installed."""

    env: FrozenDict[str, str]


@rule
async def layerforge_env(tool: Layerforge) -> LayerforgeEnv:
    env_vars = await Get(EnvironmentVars, EnvironmentVarsRequest(tool.env_vars))
    host = await Get(EnvironmentVars, EnvironmentVarsRequest(["PATH"]))
    host_path = (host.get("PATH") or "").split(os.pathsep)
    search_path = tuple(p for entry in tool.nix_search_path for p in (host_path if entry == "<PATH>" else [entry]) if p)
    dirs: list[str] = []
    for name in ("nix-build", "nix", "nix-store"):
        paths = await Get(
            BinaryPaths,
            BinaryPathRequest(binary_name=name, search_path=search_path, test=BinaryPathTest(args=["--version"])),
        )
        if paths.first_path is not None:
            d = os.path.dirname(paths.first_path.path)
            if d not in dirs:
                dirs.append(d)
    path = list(dict.fromkeys([*dirs, "/usr/bin", "/bin"]))
    return LayerforgeEnv(FrozenDict({**env_vars, "PATH": os.pathsep.join(path)}))


@dataclass(frozen=True)
class LayerforgeProcess:
    argv: tuple[str, ...]
    description: str
    input_digest: Digest
    output_directories: tuple[str, ...] = ()
    output_files: tuple[str, ...] = ()
    cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL


@rule
async def layerforge_process(request: LayerforgeProcess, tool: Layerforge, env: LayerforgeEnv) -> Process:
    pex = await Get(VenvPex, PexRequest, tool.to_pex_request())
    process = await Get(
        Process,
        VenvPexProcess(
            pex,
            argv=request.argv,
            description=request.description,
            input_digest=request.input_digest,
            output_directories=request.output_directories,
            output_files=request.output_files,
            extra_env=env.env,
            cache_scope=request.cache_scope,
            level=LogLevel.DEBUG,
        ),
    )
    # With a remote cache, wait this long for a hit before building locally as well: a layer
    # build started and cancelled a few milliseconds later is wasted CPU on a CI machine.
    return dataclasses.replace(process, remote_cache_speculation_delay_millis=tool.remote_cache_speculation_delay)


def rules():
    return collect_rules()
