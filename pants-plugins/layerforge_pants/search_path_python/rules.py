"""A Pants Python provider that finds interpreters with one `python -c` per candidate.

Without a provider, Pants finds the interpreter for every PEX (the layerforge tool's included)
by starting the Pex CLI, which identifies the interpreters on the search path: about 2 s per
Pants run on a fresh CI machine, paid even when every process is a remote-cache hit, because
the answer is machine-specific. This provider gives the same kind of answer in tens of
milliseconds: among `python<major>.<minor>` binaries on `[python-bootstrap].search_path` for the
versions the constraints allow, the lowest version first and search-path order within a version,
the first whose implementation and version meet the constraints, named by its real path and
fingerprinted by the sha256 of its binary (what Pants records for a Pex-found interpreter).
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.util_rules.pex import PythonProvider
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.core.subsystems.python_bootstrap import PythonBootstrap
from pants.core.util_rules.environments import EnvironmentTarget
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, SearchPath
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

# Prints implementation, version, real path and the sha256 of the binary, one per line.
_IDENTIFY = (
    "import hashlib, os, platform, sys\n"
    "path = os.path.realpath(sys.executable)\n"
    "digest = hashlib.sha256()\n"
    "with open(path, 'rb') as f:\n"
    "    for block in iter(lambda: f.read(1 << 16), b''):\n"
    "        digest.update(block)\n"
    "print(platform.python_implementation())\n"
    "print('.'.join(map(str, sys.version_info[:3])))\n"
    "print(path)\n"
    "print(digest.hexdigest())\n"
)


@dataclass(frozen=True)
class SearchPathPythonProvider(PythonProvider):
    pass


@rule(desc="Find a Python interpreter on the search path", level=LogLevel.DEBUG)
async def search_path_python(
    request: SearchPathPythonProvider,
    bootstrap: PythonBootstrap,
    python_setup: PythonSetup,
    env_target: EnvironmentTarget,
) -> PythonExecutable:
    constraints = request.interpreter_constraints
    versions = constraints.partition_into_major_minor_versions(python_setup.interpreter_versions_universe)
    search_path = SearchPath(bootstrap.interpreter_search_paths)
    found = await MultiGet(
        Get(BinaryPaths, BinaryPathRequest(binary_name=f"python{version}", search_path=search_path))
        for version in versions
    )
    checked: list[str] = []
    for candidate in dict.fromkeys(p.path for paths in found for p in paths.paths):
        result = await Get(
            FallibleProcessResult,
            Process(
                (candidate, "-c", _IDENTIFY),
                description=f"Identify the interpreter {candidate}",
                level=LogLevel.DEBUG,
                cache_scope=env_target.executable_search_path_cache_scope(),
            ),
        )
        lines = result.stdout.decode(errors="replace").splitlines()
        if result.exit_code != 0 or len(lines) != 4:
            checked.append(f"{candidate} (does not run: exit code {result.exit_code})")
            continue
        implementation, version, path, fingerprint = lines
        if any(
            req.project_name == implementation and req.specifier.contains(version)  # type: ignore[attr-defined]
            for req in constraints
        ):
            return PythonExecutable(path=path, fingerprint=fingerprint)
        checked.append(f"{candidate} ({implementation} {version})")
    raise ValueError(
        f"No Python interpreter meeting the interpreter constraints {constraints} was found as "
        f"{' or '.join(f'python{v}' for v in versions) or 'python<version>'} on "
        f"[python-bootstrap].search_path = {list(bootstrap.interpreter_search_paths)}"
        + (f"; checked: {', '.join(checked)}" if checked else "")
        + ". Install one, or point [python-bootstrap].search_path at it."
    )


def rules():
    return [*collect_rules(), UnionRule(PythonProvider, SearchPathPythonProvider)]
