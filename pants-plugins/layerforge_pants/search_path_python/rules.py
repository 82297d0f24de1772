"""A Pants Python provider that finds interpreters with one `python -c` per candidate.

Without a provider, Pants finds the interpreter for every PEX (the layerforge tool's included)
by starting the Pex CLI, which identifies the interpreters on the search path: about 2 s per
Pants run on a fresh CI machine, paid even when every process is a remote-cache hit, because
the answer is machine-specific. This provider gives the same kind of answer in tens of
milliseconds: among `python<major>.<minor>` binaries on `[python-bootstrap].search_path` for the
versions the constraints allow, the lowest version first and search-path order within a version,
the first whose implementation and version meet the constraints, named by its real path and
fingerprinted by the sha256 of its binary (what Pants records for a Pex-found interpreter).

The rule itself is in ``provider_rules.py``; this module holds everything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.util_rules.pex import PythonProvider
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.core.subsystems.python_bootstrap import PythonBootstrap
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, SearchPath
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
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


def version_requests(
    request: SearchPathPythonProvider, bootstrap: PythonBootstrap, python_setup: PythonSetup
) -> list[BinaryPathRequest]:
    """One `python<major>.<minor>` lookup on the search path per version the constraints allow."""
    search_path = SearchPath(bootstrap.interpreter_search_paths)
    return [
        BinaryPathRequest(binary_name=f"python{v}", search_path=search_path) for v in _versions(request, python_setup)
    ]


def _versions(request: SearchPathPythonProvider, python_setup: PythonSetup) -> list[str]:
    universe = python_setup.interpreter_versions_universe
    return list(request.interpreter_constraints.partition_into_major_minor_versions(universe))


def candidates(found: Iterable[BinaryPaths]) -> list[str]:
    """The binaries found, lowest version first, search-path order within a version, once each."""
    return list(dict.fromkeys(p.path for paths in found for p in paths.paths))


def identify(candidate: str, cache_scope: ProcessCacheScope) -> Process:
    """The process printing what :func:`chosen` reads (cached as the environment's search path is)."""
    return Process(
        (candidate, "-c", _IDENTIFY),
        description=f"Identify the interpreter {candidate}",
        level=LogLevel.DEBUG,
        cache_scope=cache_scope,
    )


def chosen(
    request: SearchPathPythonProvider, candidate: str, result: FallibleProcessResult, checked: list[str]
) -> PythonExecutable | None:
    """The interpreter ``result`` identifies, if it meets the constraints; else None, with why
    appended to ``checked``."""
    lines = result.stdout.decode(errors="replace").splitlines()
    if result.exit_code != 0 or len(lines) != 4:
        checked.append(f"{candidate} (does not run: exit code {result.exit_code})")
        return None
    implementation, version, path, fingerprint = lines
    if any(
        # `name`: a packaging Requirement on Pants 2.31, a pkg_resources one (a subclass) on 2.17.
        req.name == implementation and req.specifier.contains(version)
        for req in request.interpreter_constraints
    ):
        return PythonExecutable(path=path, fingerprint=fingerprint)
    checked.append(f"{candidate} ({implementation} {version})")
    return None


def not_found(
    request: SearchPathPythonProvider, bootstrap: PythonBootstrap, python_setup: PythonSetup, checked: list[str]
) -> ValueError:
    versions = _versions(request, python_setup)
    return ValueError(
        f"No Python interpreter meeting the interpreter constraints {request.interpreter_constraints} was found as "
        f"{' or '.join(f'python{v}' for v in versions) or 'python<version>'} on "
        f"[python-bootstrap].search_path = {list(bootstrap.interpreter_search_paths)}"
        + (f"; checked: {', '.join(checked)}" if checked else "")
        + ". Install one, or point [python-bootstrap].search_path at it."
    )
