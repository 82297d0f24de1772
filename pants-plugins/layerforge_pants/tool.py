"""Running the layerforge tool (a PEX from the project's wheel) as Pants processes."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pants.backend.python.util_rules.pex import VenvPex, VenvPexProcess, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, BinaryPathTest
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from layerforge_pants.subsystem import Layerforge

NIX_TOOLS = ("nix-build", "nix", "nix-store", "nix-instantiate")


@dataclass(frozen=True)
class NixTools:
    """Absolute paths of the Nix commands found on `[layerforge].nix_search_path`."""

    paths: FrozenDict[str, str]

    def path(self, name: str) -> str:
        found = self.paths.get(name)
        if found is None:
            raise NixToolMissing(
                f"`{name}` is not on [layerforge].nix_search_path (`<PATH>` and /nix/var/nix/profiles/default/bin "
                "by default): install Nix (on Debian: apt-get install nix-bin)."
            )
        return found


class NixToolMissing(Exception):
    pass


@rule
async def find_nix_tools(tool: Layerforge) -> NixTools:
    host = await Get(EnvironmentVars, EnvironmentVarsRequest(["PATH"]))
    host_path = (host.get("PATH") or "").split(os.pathsep)
    search_path = tuple(p for entry in tool.nix_search_path for p in (host_path if entry == "<PATH>" else [entry]) if p)
    found = await MultiGet(
        Get(
            BinaryPaths,
            BinaryPathRequest(binary_name=name, search_path=search_path, test=BinaryPathTest(["--version"])),
        )
        for name in NIX_TOOLS
    )
    return NixTools(
        FrozenDict({name: p.first_path.path for name, p in zip(NIX_TOOLS, found) if p.first_path is not None})
    )


@dataclass(frozen=True)
class LayerforgeEnv:
    """Environment of layerforge processes (and of Nix evaluations): the passed-through
    variables, and a PATH holding the Nix tools when they are installed."""

    env: FrozenDict[str, str]


@rule
async def layerforge_env(tool: Layerforge, nix: NixTools) -> LayerforgeEnv:
    env_vars = await Get(EnvironmentVars, EnvironmentVarsRequest(tool.env_vars))
    dirs = [os.path.dirname(nix.paths[name]) for name in NIX_TOOLS[:3] if name in nix.paths]
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
    #: Run the wheel's native `layerforge` command (which builds store-path nix layers itself
    #: and execs the venv's Python for anything else) instead of the Python entry point.
    native_command: bool = False


#: The venv script (from the wheel) that `native_command` processes run.
NATIVE_COMMAND = "layerforge"


def native_argv(process: Process, pex: VenvPex, argv: tuple[str, ...]) -> Process:
    """`process` (of the tool's entry point) running the venv's native `layerforge` command
    instead; its Python is the venv's (the command execs it for what it does not build)."""
    env = {**process.env, "LAYERFORGE_PYTHON": pex.python.argv0}
    return dataclasses.replace(process, argv=(pex.bin[NATIVE_COMMAND].argv0, *argv), env=FrozenDict(env))


@rule
async def layerforge_process(
    request: LayerforgeProcess, tool: Layerforge, env: LayerforgeEnv, pex_env: PexEnvironment
) -> Process:
    pex_request = VenvPexRequest(tool.to_pex_request(), pex_env.in_sandbox(working_directory=None), (NATIVE_COMMAND,))
    pex = await Get(VenvPex, VenvPexRequest, pex_request)
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
    if request.native_command:
        process = native_argv(process, pex, request.argv)
    # With a remote cache, wait this long for a hit before building locally as well: a layer
    # build started and cancelled a few milliseconds later is wasted CPU on a CI machine.
    return dataclasses.replace(process, remote_cache_speculation_delay_millis=tool.remote_cache_speculation_delay)


class LayerforgeFailed(Exception):
    """A layerforge process failed: one line naming the target and, where the tool named an
    option, the field it comes from."""


_TOOL_ERROR = re.compile(r"^layerforge [\w-]+: error: (?:(?P<option>--[\w-]+): )?(?P<message>.*)$")


def failure_message(stderr: bytes, description: str, address: Address, fields: Mapping[str, str]) -> str:
    """The tool's one-line error, the option it names replaced by the target's field."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    line = next((line for line in reversed(lines) if _TOOL_ERROR.match(line)), lines[-1] if lines else "no output")
    m = _TOOL_ERROR.match(line)
    if m and m.group("option") in fields:
        return shown(f"The `{fields[m.group('option')]}` field of {address}: {m.group('message')}")
    return shown(f"{description} failed: {m.group(0) if m else line}")


def shown(text: str, limit: int = 2000) -> str:
    """``text`` on one line with control characters (C0, DEL, C1, line separators) as escapes:
    what tools print is input, and must not reach the terminal raw."""

    def safe(c: str) -> str:
        code = ord(c)
        control = code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029)
        return c.encode("unicode_escape").decode("ascii") if control else c

    return "".join(map(safe, text[:limit])) + ("..." if len(text) > limit else "")


async def run_layerforge(
    request: LayerforgeProcess, address: Address, fields: Mapping[str, str]
) -> FallibleProcessResult:
    """Run ``request``; a failure raises :class:`LayerforgeFailed` with the tool's error as one
    line, its option (``--store-path``) named as the field it comes from (``fields``)."""
    process = await Get(Process, LayerforgeProcess, request)
    return checked(await Get(FallibleProcessResult, Process, process), process.description, address, fields)


def checked(
    result: FallibleProcessResult, description: str, address: Address, fields: Mapping[str, str]
) -> FallibleProcessResult:
    """``result``, or :class:`LayerforgeFailed` if its process failed (see :func:`run_layerforge`)."""
    if result.exit_code != 0:
        raise LayerforgeFailed(failure_message(result.stderr, description, address, fields))
    return result


def rules():
    return collect_rules()
