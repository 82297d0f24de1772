"""Running the layerforge tool (a PEX from the project's wheel) as Pants processes: what the
rules in ``tool_rules.py`` use."""

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
from pants.engine.env_vars import EnvironmentVars
from pants.engine.fs import Digest
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from layerforge_pants.goals.subsystem import Layerforge

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


def nix_search_path(tool: Layerforge, host: EnvironmentVars) -> tuple[str, ...]:
    """`[layerforge].nix_search_path` with `<PATH>` replaced by the environment's PATH."""
    host_path = (host.get("PATH") or "").split(os.pathsep)
    return tuple(p for entry in tool.nix_search_path for p in (host_path if entry == "<PATH>" else [entry]) if p)


def nix_tool_requests(search_path: tuple[str, ...]) -> list[BinaryPathRequest]:
    """One request per Nix command (:data:`NIX_TOOLS`), each checked with ``--version``."""
    test = BinaryPathTest(["--version"])
    return [BinaryPathRequest(binary_name=name, search_path=search_path, test=test) for name in NIX_TOOLS]


def nix_tools(found: tuple[BinaryPaths, ...]) -> NixTools:
    """The commands :func:`nix_tool_requests` found, by name."""
    return NixTools(
        FrozenDict({name: p.first_path.path for name, p in zip(NIX_TOOLS, found) if p.first_path is not None})
    )


@dataclass(frozen=True)
class LayerforgeEnv:
    """Environment of layerforge processes (and of Nix evaluations): the passed-through
    variables, and a PATH holding the Nix tools when they are installed."""

    env: FrozenDict[str, str]


def tool_env(env_vars: EnvironmentVars, nix: NixTools) -> LayerforgeEnv:
    """The passed-through ``env_vars`` and a PATH with the Nix tools' directories first."""
    dirs = [os.path.dirname(nix.paths[name]) for name in NIX_TOOLS[:3] if name in nix.paths]
    path = list(dict.fromkeys([*dirs, "/usr/bin", "/bin"]))
    return LayerforgeEnv(FrozenDict({**env_vars, "PATH": os.pathsep.join(path)}))


@dataclass(frozen=True)
class RegistryEnv:
    """What processes that talk to registries see besides :class:`LayerforgeEnv`: the
    `[layerforge].registry_env_vars` (where logins and CAs are). Only processes that are not
    cached persistently get them, so none of it enters a cache key."""

    env: FrozenDict[str, str]
    #: What signing processes see besides: the key's password (and the key, when it is held
    #: in a variable); see `[layerforge].sign_key`.
    signing_env: FrozenDict[str, str] = dataclasses.field(default_factory=FrozenDict)


#: Cache scopes of processes that may see :class:`RegistryEnv` (no persistent or remote cache).
UNCACHED = frozenset({ProcessCacheScope.PER_SESSION, ProcessCacheScope.PER_RESTART_ALWAYS,
                      ProcessCacheScope.PER_RESTART_SUCCESSFUL})  # fmt: skip


@dataclass(frozen=True)
class LayerforgeProcess:
    argv: tuple[str, ...]
    description: str
    input_digest: Digest
    output_directories: tuple[str, ...] = ()
    output_files: tuple[str, ...] = ()
    cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL
    #: Run the wheel's native `layerforge` command instead of the Python entry point: it
    #: builds store-path nix layers itself and answers a push that has nothing to send from
    #: the receipt of the last one (`pants publish` gets the command line's speed), and execs
    #: the venv's Python for anything else.
    native_command: bool = False
    #: It talks to registries: it sees :class:`RegistryEnv`, and so must not be cached persistently.
    registry: bool = False
    #: It signs: it also sees the signing key's environment (:attr:`RegistryEnv.signing_env`).
    signing: bool = False

    def __post_init__(self) -> None:
        if (self.registry or self.signing) and self.cache_scope not in UNCACHED:
            raise ValueError(f"{self.description}: a process that sees the registry environment must not be cached")


#: The native command in the tool's venv (see :func:`tool_venv_request`).
NATIVE_COMMAND = "layerforge"


def tool_venv_request(tool: Layerforge, pex_env: PexEnvironment) -> VenvPexRequest:
    """The tool's venv PEX, exposing the native command: one venv for every process, whether
    it runs the command or the Python entry point."""
    return VenvPexRequest(
        tool.to_pex_request(), pex_env.in_sandbox(working_directory=None), bin_names=(NATIVE_COMMAND,)
    )


def native_argv(process: Process, pex: VenvPex, request: LayerforgeProcess) -> Process:
    """``process`` (of the tool's entry point) running the venv's native command with the
    request's arguments, if asked; its Python is the venv's (the command execs it for what it
    does not do itself)."""
    if not request.native_command:
        return process
    env = {**process.env, "LAYERFORGE_PYTHON": pex.python.argv0}
    return dataclasses.replace(process, argv=(pex.bin[NATIVE_COMMAND].argv0, *request.argv), env=FrozenDict(env))


def venv_pex_process(
    pex: VenvPex, request: LayerforgeProcess, env: LayerforgeEnv, registry_env: RegistryEnv | None = None
) -> VenvPexProcess:
    """The tool PEX run as ``request`` asks (with ``registry_env`` if it talks to registries)."""
    extra = {
        **(registry_env.env if request.registry and registry_env else {}),
        **(registry_env.signing_env if request.signing and registry_env else {}),
        **env.env,
    }
    return VenvPexProcess(
        pex,
        argv=request.argv,
        description=request.description,
        input_digest=request.input_digest,
        output_directories=request.output_directories,
        output_files=request.output_files,
        extra_env=extra,
        cache_scope=request.cache_scope,
        level=LogLevel.DEBUG,
    )


def registry_names_dropped(process: Process, request: LayerforgeProcess, tool: Layerforge) -> Process:
    """``process`` without the `registry_env_vars` that are not `env_vars` too, unless it talks
    to registries: Pants passes `SSL_CERT_FILE` and `SSL_CERT_DIR` to every PEX process
    (`[subprocess-environment].env_vars`), and a cached process must not be keyed by them."""
    if request.registry:
        return process
    kept = {v.split("=", 1)[0] for v in tool.env_vars}
    dropped = {v.split("=", 1)[0] for v in tool.registry_env_vars} - kept
    env = {k: v for k, v in process.env.items() if k not in dropped}
    return process if len(env) == len(process.env) else dataclasses.replace(process, env=FrozenDict(env))


def speculating(process: Process, tool: Layerforge) -> Process:
    """``process`` with the subsystem's remote-cache speculation delay."""
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


def checked(
    result: FallibleProcessResult, description: str, address: Address, fields: Mapping[str, str]
) -> FallibleProcessResult:
    """``result``, or :class:`LayerforgeFailed` with the tool's error as one line, its option
    (``--store-path``) named as the field it comes from (``fields``), if its process failed."""
    if result.exit_code != 0:
        raise LayerforgeFailed(failure_message(result.stderr, description, address, fields))
    return result
