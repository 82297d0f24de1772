"""The runtime closure of store paths and its reference graph, as real Nix reports it."""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from layerforge.errors import LayerforgeError
from layerforge.images.nix.derivation import parse_derivation
from layerforge.images.nix.flake import FLAKE_FEATURES, LOCKED, TO_DERIVATION
from layerforge.images.nix.store_path import parse_store_path

NIX_COMMAND = ("--extra-experimental-features", "nix-command")
#: Builds as the calling user, as a single-user install run as root does. It changes no
#: derivation and no output path (Nix hashes neither with it), so no plan, layer or cache key.
NO_BUILD_USERS = ("--option", "build-users-group", "")


class NixError(LayerforgeError):
    """Nix refused or failed; the message carries Nix's own error text."""


@dataclass(frozen=True)
class PathInfo:
    path: str
    nar_hash: str
    nar_size: int
    references: tuple[str, ...]
    deriver: str | None = None


@dataclass(frozen=True)
class Closure:
    """Every store path reachable from ``roots``, with its metadata. Self-references are
    dropped from ``references``: a path always contains itself."""

    roots: tuple[str, ...]
    infos: dict[str, PathInfo] = field(hash=False)

    @property
    def paths(self) -> list[str]:
        return sorted(self.infos)

    def refs(self, path: str) -> tuple[str, ...]:
        return tuple(r for r in self.infos[path].references if r != path)

    def closure_of(self, paths: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(paths)
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            stack.extend(self.refs(p))
        return seen

    def total_nar_size(self, paths: Iterable[str] | None = None) -> int:
        return sum(self.infos[p].nar_size for p in (self.infos if paths is None else paths))


def system_args(system: str | None) -> tuple[str, ...]:
    """``--system SYSTEM`` (what ``builtins.currentSystem`` and flake shorthands resolve to)."""
    return () if system is None else ("--system", system)


class Nix:
    """Runs Nix's own commands; their environment (NIX_CONFIG, NIX_PATH, ...) passes through."""

    def __init__(self, echo_build_log: bool | None = None) -> None:
        self.echo = sys.stderr.isatty() if echo_build_log is None else echo_build_log
        self._build_users: tuple[str, ...] | None = None

    def _tool(self, name: str) -> str:
        found = shutil.which(name)
        if not found:
            raise NixError(f"'{name}' not found: install Nix (on Debian: apt-get install nix-bin)")
        return found

    def build_users_args(self) -> tuple[str, ...]:
        """:data:`NO_BUILD_USERS` when Nix runs as root and the group its configuration names in
        ``build-users-group`` (``nixbld`` by default) does not exist on this machine: Debian's
        nix-bin as root, where Nix refuses every build ("the group 'nixbld' specified in
        'build-users-group' does not exist"). Otherwise nothing: a group that exists, an empty
        setting or another user is left to Nix. The setting is Nix's own answer
        (``nix show-config``, with this environment's NIX_CONFIG and nix.conf), asked once; if
        Nix cannot answer, nothing is added and Nix's own commands report why. The Pants
        plugin's evaluation does the same in its process (``layerforge_pants.nix.evaluation``)."""
        if self._build_users is None:
            self._build_users = NO_BUILD_USERS if os.geteuid() == 0 and _missing_group(self._users_group()) else ()
        return self._build_users

    def _users_group(self) -> str:
        nix = shutil.which("nix")
        if nix is None:
            return ""
        argv = [nix, *NIX_COMMAND, "show-config"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy(), timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        if proc.returncode != 0:
            return ""
        for line in proc.stdout.splitlines():
            name, _, value = line.partition(" = ")
            if name.strip() == "build-users-group":
                return value.strip()
        return ""

    def _run(self, argv: Sequence[str], what: str) -> str:
        proc = subprocess.Popen(
            [self._tool(argv[0]), *self.build_users_args(), *argv[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        assert proc.stderr is not None and proc.stdout is not None
        log: list[str] = []
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            if self.echo:
                sys.stderr.write(line)
        out = proc.stdout.read()
        if proc.wait() != 0:
            raise NixError(f"{what} failed: {_nix_error(log)}")
        return out

    def build(
        self, nix_file: Path, attr: str | None, argstrs: Sequence[tuple[str, str]] = (), system: str | None = None
    ) -> list[str]:
        """``nix-build FILE [-A ATTR] [--argstr N V]... --no-out-link``: the output paths, realised.
        With ``system``, the file is evaluated for it (``nix-instantiate --argstr system SYSTEM
        --system SYSTEM``) and its derivations realised as this machine can (a builder or
        substituter for that system, or outputs already in the store)."""
        if not nix_file.is_file():
            raise LayerforgeError(f"--nix-file: '{nix_file}' does not exist")
        what = f"nix-build {nix_file}" + (f" -A {attr}" if attr else "")
        # A file named like an option is passed as ./NAME, so Nix reads it as the file.
        operand = f"./{nix_file}" if str(nix_file).startswith("-") else str(nix_file)
        argv = [operand, *(("-A", attr) if attr else ())]
        for name, value in sorted(argstrs):
            argv += ["--argstr", name, value]
        if system is not None:
            argv += ["--argstr", "system", system, "--system", system]
            out = self._run(["nix-instantiate", *argv], f"{what} (--system {system})")
            return self.realise([line.strip() for line in out.splitlines() if line.strip()], "--nix-file")
        out = self._run(["nix-build", *argv, "--no-out-link"], what)
        paths = [line.strip() for line in out.splitlines() if line.strip()]
        if not paths:
            raise NixError(f"nix-build {nix_file} produced no output path")
        return [parse_store_path(p, "nix-build output").path for p in paths]

    def realise(self, derivations: Sequence[str], option: str = "--derivation") -> list[str]:
        """``nix-store --realise DRV!OUT...``: the output paths, built or substituted."""
        refs = [parse_derivation(d, option) for d in derivations]
        if not refs:
            return []
        out = self._run(["nix-store", "--realise", *refs], f"{option}: nix-store --realise {refs[0]}")
        return [parse_store_path(p.strip(), "nix-store --realise output").path for p in out.splitlines() if p.strip()]

    def flake_derivation(self, installable: str, option: str = "--flake", system: str | None = None) -> str:
        """The derivation output (``DRV!OUT``) a flake output reference names, evaluated with
        the flake's lock file (never updated); ``.#NAME`` is ``packages.SYSTEM.NAME`` of
        ``system`` (default: this machine's), as ``nix build --system`` resolves it."""
        argv = ["nix", *FLAKE_FEATURES, "eval", "--raw", *LOCKED, *system_args(system), installable]
        argv += ["--apply", TO_DERIVATION]
        return parse_derivation(self._run(argv, f"{option}: nix eval {installable}").strip(), f"{option} evaluation")

    def ensure_present(self, paths: Sequence[str], option: str = "--store-path") -> None:
        """Realise the store paths that are not valid in the local store through the configured
        substituters (``nix-store --realise``): a plan or layer built elsewhere may name paths
        this machine never built."""
        paths = sorted({parse_store_path(p, option).path for p in paths})
        if not paths:
            return
        missing = self._invalid(paths)
        if not missing:
            return
        try:
            self._run(["nix-store", "--realise", *missing], "nix-store --realise")
        except NixError as e:
            still = self._invalid(missing) or missing
            more = f" (and {len(still) - 1} more)" if len(still) > 1 else ""
            raise NixError(
                f"{option}: {still[0]}{more} is not in the local Nix store and could not be realised "
                f"through the configured substituters: {str(e).removeprefix('nix-store --realise failed: ')}"
            ) from None

    def _invalid(self, paths: Sequence[str]) -> list[str]:
        out = self._run(["nix-store", "--check-validity", "--print-invalid", *paths], "nix-store --check-validity")
        return sorted(line.strip() for line in out.splitlines() if line.strip())

    def closure(self, roots: Sequence[str]) -> Closure:
        """Closure and references of ``roots`` from ``nix path-info --json -r``."""
        for r in roots:
            parse_store_path(r)
        out = self._run(["nix", *NIX_COMMAND, "path-info", "--json", "-r", *roots], "nix path-info")
        try:
            data = json.loads(out)
        except ValueError as e:
            raise NixError(f"nix path-info printed invalid JSON: {e}") from None
        items = data.items() if isinstance(data, dict) else ((d.get("path"), d) for d in data)
        infos: dict[str, PathInfo] = {}
        for path, d in items:
            if not isinstance(d, dict) or not d.get("narHash"):
                raise NixError(f"path '{path}' is not valid in the Nix store")
            infos[str(path)] = PathInfo(
                path=str(path),
                nar_hash=str(d["narHash"]),
                nar_size=int(d.get("narSize", 0)),
                references=tuple(sorted(d.get("references") or ())),
                deriver=d.get("deriver"),
            )
        missing = [r for r in roots if r not in infos]
        if missing:
            raise NixError(f"nix path-info did not report {missing}")
        return Closure(roots=tuple(sorted(set(roots))), infos=infos)

    def add_to_store(self, file: Path) -> str:
        out = self._run(["nix-store", "--add", str(file)], f"nix-store --add {file}")
        return parse_store_path(out.strip(), "nix-store --add output").path


class SharedNix(Nix):
    """:class:`Nix` for the plans of several images in one process (``nix-plans``): Nix's
    configuration is asked once, each list of derivations is realised once, and a closure
    whose roots' path infos are known (from an earlier query, such as :meth:`prefetch` of every
    image's roots) is computed from them: the same closure, in the order ``nix path-info``
    gives it (sorted), without asking Nix again."""

    def __init__(self, echo_build_log: bool | None = None) -> None:
        super().__init__(echo_build_log)
        self._realised: dict[tuple[str, ...], list[str]] = {}
        self._infos: dict[str, PathInfo] = {}

    def realise(self, derivations: Sequence[str], option: str = "--derivation") -> list[str]:
        key = tuple(derivations)
        if key not in self._realised:
            self._realised[key] = super().realise(derivations, option)
        return list(self._realised[key])

    def closure(self, roots: Sequence[str]) -> Closure:
        for r in roots:
            parse_store_path(r)
        if not all(r in self._infos for r in roots):
            self._infos.update(super().closure(roots).infos)
        paths = Closure((), self._infos).closure_of(roots)
        return Closure(roots=tuple(sorted(set(roots))), infos={p: self._infos[p] for p in sorted(paths)})

    def prefetch(self, roots: Sequence[str]) -> None:
        """Ask Nix once for the closure of all ``roots``."""
        if roots:
            self.closure(sorted(set(roots)))


def _missing_group(name: str) -> bool:
    """Whether ``name`` is a group name this machine does not know (as Nix asks: getgrnam)."""
    if not name:
        return False
    try:
        grp.getgrnam(name)
    except KeyError:
        return True
    return False


def _nix_error(log: list[str]) -> str:
    """Nix's own error: from the first line starting with 'error:' to the end, one line."""
    start = next((i for i, line in enumerate(log) if line.lstrip().startswith("error")), max(len(log) - 3, 0))
    text = " ".join(line.strip() for line in log[start:] if line.strip())
    return text or "no error message"
