"""Evaluating a nix_oci_image's Nix file or flake to derivations, on every Pants run.

The evaluation runs Nix itself (`nix-instantiate` for Nix files, `nix eval` for flakes: tens of
milliseconds, no tool PEX) with cache scope PER_SESSION: never cached, not even by pantsd
between runs, so whatever Nix reads (a channel through `NIX_PATH`, an absolute import, a flake
input) is read again. What it prints, derivation paths that fix the store paths of their
outputs, is the argv of the cached plan process: change anything Nix reads and the derivations
change, so the image changes; change nothing and nothing but the evaluation runs again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import Digest
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.util.logging import LogLevel

from layerforge_pants.goals.tool import LayerforgeEnv, NixTools, shown
from layerforge_pants.nix.flake import FLAKE_FEATURES, TO_DERIVATION, FlakeRef
from layerforge_pants.nix.target import NAME, STORE_PATH

_DERIVATION = re.compile(rf"^({STORE_PATH}\.drv)(?:!({NAME}(?:,{NAME})*))?\Z")


@dataclass(frozen=True)
class NixEvaluation:
    """One Nix run in a sandbox holding ``input_digest``; ``field`` of ``address`` is what an
    error names."""

    tool: str  # nix-instantiate or nix
    argv: tuple[str, ...]
    input_digest: Digest
    address: Address
    field: str
    what: str

    @classmethod
    def nix_file(
        cls,
        path: str,
        *,
        attrs: tuple[str, ...],
        argstrs: tuple[tuple[str, str], ...],
        digest: Digest,
        address: Address,
        field: str,
        system: str | None = None,
    ) -> NixEvaluation:
        """``nix-instantiate ./FILE [-A ATTR]... [--argstr NAME VALUE]...``: what nix-build would
        build; for ``system``, with ``--argstr system SYSTEM --system SYSTEM``. The file is given
        as ``./FILE``, never read as an option (Nix's legacy commands take no ``--``); Nix takes
        the arguments after ``-A`` and ``--argstr`` as values whatever they start with."""
        argv = [f"./{path}", *(a for attr in attrs for a in ("-A", attr))]
        argv += [a for k, v in sorted(argstrs) for a in ("--argstr", k, v)]
        if system:
            argv += ["--argstr", "system", system, "--system", system]
        what = f"nix-instantiate {path}" + "".join(f" -A {a}" for a in attrs)
        what += f" --system {system}" if system else ""
        return cls("nix-instantiate", tuple(argv), digest, address, field, what)

    @classmethod
    def flake(
        cls, ref: FlakeRef, digest: Digest, address: Address, field: str, system: str | None = None
    ) -> NixEvaluation:
        """``nix eval`` of the output's derivation, with the lock file as it is; with ``system``,
        ``.#NAME`` is ``packages.SYSTEM.NAME`` (``--system SYSTEM``)."""
        installable = ref.installable()
        systems = ("--system", system) if system else ()
        argv = (*FLAKE_FEATURES, "eval", "--raw", "--no-update-lock-file", *systems, installable)
        argv += ("--apply", TO_DERIVATION)
        what = f"nix eval {installable}" + (f" --system {system}" if system else "")
        return cls("nix", argv, digest, address, field, what)


@dataclass(frozen=True)
class Derivations:
    """Derivation outputs, ``DRV!OUT`` (the output always named), sorted."""

    outputs: tuple[str, ...]


class NixEvaluationFailed(Exception):
    pass


#: Runs the evaluation (``sh -c SCRIPT sh NIX TOOL ARGS...``) where and when Nix runs, as the
#: tool's ``Nix.build_users_args`` does: as root, when the group Nix's configuration names in
#: ``build-users-group`` (``nixbld`` by default; Nix's own answer, ``nix show-config``) is not a
#: group of this machine (``getent`` answers 2, not found), Nix runs with ``--option
#: build-users-group ''``, as a single-user root install does: Debian's nix-bin as root would
#: refuse any build the evaluation needs (import from derivation), "the group 'nixbld' specified
#: in 'build-users-group' does not exist". A group that exists, an empty setting, another user,
#: no ``nix`` or no ``getent``: Nix runs as it is. The option changes no derivation Nix prints,
#: so nothing the plan's cache key holds; and this process is never cached (PER_SESSION), so
#: the answer is this run's, never an earlier one's.
BUILD_USERS_SCRIPT = """nix=$1; shift
if [ -n "$nix" ] && [ "$(id -u)" = 0 ]; then
  group=$("$nix" --extra-experimental-features nix-command show-config 2>/dev/null \\
    | sed -n 's/^build-users-group = //p')
  if [ -n "$group" ]; then
    getent group "$group" >/dev/null 2>&1
    if [ $? = 2 ]; then
      tool=$1; shift
      exec "$tool" --option build-users-group '' "$@"
    fi
  fi
fi
exec "$@"
"""


def evaluation_process(request: NixEvaluation, nix: NixTools, env: LayerforgeEnv) -> Process:
    tool = nix.path(request.tool)
    return Process(
        argv=("/bin/sh", "-c", BUILD_USERS_SCRIPT, "sh", nix.paths.get("nix", ""), tool, *request.argv),
        description=f"Evaluate the Nix derivations of {request.address} ({request.what})",
        input_digest=request.input_digest,
        env=env.env,
        cache_scope=ProcessCacheScope.PER_SESSION,
        level=LogLevel.DEBUG,
    )


def derivations(request: NixEvaluation, result: FallibleProcessResult) -> Derivations:
    """The derivation outputs the evaluation printed, or :class:`NixEvaluationFailed`."""
    where = f"The `{request.field}` field of {request.address}"
    if result.exit_code != 0:
        raise NixEvaluationFailed(shown(f"{where}: {request.what} failed: {nix_error(result.stderr)}"))
    outputs = []
    for line in result.stdout.decode("utf-8", "replace").split():
        m = _DERIVATION.match(line)
        if not m:
            raise NixEvaluationFailed(shown(f"{where}: {request.what} printed {line!r}, not a derivation"))
        outputs.append(f"{m.group(1)}!{m.group(2) or 'out'}")
    if not outputs:
        raise NixEvaluationFailed(f"{where}: {request.what} gave no derivation to build")
    return Derivations(tuple(sorted(set(outputs))))


def nix_error(stderr: bytes) -> str:
    """Nix's own error, from its first line starting with 'error' to the end, as one line."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith("error")), max(len(lines) - 3, 0))
    kept = [line for line in lines[start:] if line and not line.startswith("(use '--show-trace'")]
    return " ".join(kept) or "no error message"
