"""The monorepo shape of issue 33, generated from the host's own files (no nixpkgs needed).

A shared runtime of P packages (plain derivations, busybox from the host as the builder, as
benchmarks/nix/textclosure.nix builds), each about ``package_bytes`` of small files copied
from /usr/share, /usr/include and /usr/lib, and N services, each an app path referencing its
own data path (``data_bytes`` of other host files) and every runtime package but a few leaves.
The runtime is a tree of references (package i > 0 references package (i - 1) // FANOUT), so a
leaf package is one no other package references: service s leaves out ``excluded`` leaves
(chosen in turn, deterministically), and the bump changes the last leaf only (its version, read
from bump.nix), so only that package and the apps of the services holding it get new store
paths.

What is copied: whole directories whose files are all regular files or symlinks of at most
MAX_FILE bytes (and whose names need no quoting, and with no executable for another machine), at most a quarter of a package each, in
sorted order, root after root; a package takes them in turn until it holds about its size.
When the host has fewer bytes than the shape asks, the directories are taken again from the
start (other store paths, so other layers, with the same files).

The Nix file imports bump.nix (the bumped leaf's version) and cost.nix (a number the file
forces before it answers: 0, or a computation of about a second, ``--import-cost``, standing for
an ``import <nixpkgs>`` every evaluation pays); neither changes any other derivation.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOTS = ("/usr/share", "/usr/include", "/usr/lib")
#: Only directories of small files: "many small files", as a runtime package mostly is.
MAX_FILE = 512 << 10
#: Package i > 0 references package (i - 1) // FANOUT: the first packages are the ones every
#: other needs (a libc), the last ones leaves.
FANOUT = 4
#: A name that needs no quoting in a shell word or a Nix string.
_SAFE = re.compile(r"^[A-Za-z0-9._+@,=-]+$")
NIX_FILE = "monorepo.nix"
BUMP_FILE = "bump.nix"
COST_FILE = "cost.nix"
#: The layer budget: Pants' and the CLI's maximum, enough for one layer per store path.
MAX_LAYERS = 125
#: The attribute of service ``i``.
SERVICE = "svc{}"


@dataclass(frozen=True)
class Shape:
    packages: int
    services: int
    package_bytes: int
    data_bytes: int
    excluded: int

    def __post_init__(self) -> None:
        if self.packages < 2 or self.services < 1:
            raise SystemExit("the shape needs at least 2 runtime packages and 1 service")
        if self.packages + 2 > MAX_LAYERS:
            raise SystemExit(f"{self.packages} packages need more than {MAX_LAYERS} layers per image")
        if not 0 <= self.excluded < len(self.leaves()):
            raise SystemExit(
                f"each service can leave out 0 to {len(self.leaves()) - 1} of the {len(self.leaves())} leaf packages"
            )

    def parent(self, i: int) -> int | None:
        return None if i == 0 else (i - 1) // FANOUT

    def leaves(self) -> list[int]:
        """The runtime packages no other package references, in order."""
        parents = {self.parent(i) for i in range(self.packages)}
        return [i for i in range(self.packages) if i not in parents]

    def bumped(self) -> int:
        """The leaf package ``--bump`` changes."""
        return self.leaves()[-1]

    def uses(self, service: int) -> list[int]:
        """The runtime packages service ``service`` references: all but ``excluded`` leaves."""
        leaves = self.leaves()
        out = {leaves[(service * self.excluded + k) % len(leaves)] for k in range(self.excluded)}
        return [i for i in range(self.packages) if i not in out]

    def attrs(self) -> list[str]:
        return [SERVICE.format(s) for s in range(self.services)]


@dataclass(frozen=True)
class Unit:
    """A host directory copied whole into a package: its path without the leading / and the
    bytes of its regular files."""

    path: str
    size: int


@dataclass
class _Dir:
    size: int
    largest: int
    ok: bool
    children: list[str]


def _elf_machine(path: str) -> bytes | None:
    """The e_machine field of an ELF file (None for any other file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    return head[18:20] if len(head) == 20 and head[:4] == b"\x7fELF" else None


#: This machine's ELF machine: a layer refuses an executable for another one (/usr/lib holds a
#: few, such as perf's 32-bit vDSO reader).
_MACHINE = _elf_machine("/proc/self/exe")


def _foreign_elf(path: str) -> bool:
    machine = _elf_machine(path)
    return machine is not None and machine != _MACHINE


def _scan(root: str) -> dict[str, _Dir]:
    """Every directory under ``root``: bytes of its regular files, its largest file, whether all
    its entries are regular files, symlinks or such directories with plain names."""
    dirs: dict[str, _Dir] = {}
    for path, subdirs, files in os.walk(root, topdown=False):
        d = _Dir(0, 0, True, [])
        for name in files:
            try:
                st = os.lstat(os.path.join(path, name))
            except OSError:
                d.ok = False
                continue
            if stat.S_ISREG(st.st_mode):
                d.size += st.st_size
                d.largest = max(d.largest, st.st_size)
                if st.st_mode & 0o111 and _foreign_elf(os.path.join(path, name)):
                    d.ok = False
            elif not stat.S_ISLNK(st.st_mode):
                d.ok = False
            d.ok = d.ok and bool(_SAFE.match(name))
        for name in subdirs:
            d.ok = d.ok and bool(_SAFE.match(name))
            child = dirs.get(os.path.join(path, name))
            if child is None:  # a symlink to a directory, or unreadable
                d.ok = d.ok and os.path.islink(os.path.join(path, name))
                continue
            d.size += child.size
            d.largest = max(d.largest, child.largest)
            d.ok = d.ok and child.ok
            d.children.append(os.path.join(path, name))
        d.children.sort()
        dirs[path] = d
    return dirs


def _units(top: str, dirs: dict[str, _Dir], cap: int) -> Iterator[Unit]:
    d = dirs.get(top)
    if d is None:
        return
    if d.ok and d.size <= cap and d.largest <= MAX_FILE:
        if d.size > 0:
            yield Unit(top.lstrip("/"), d.size)
        return
    for child in d.children:
        yield from _units(child, dirs, cap)


def host_units(total: int, cap: int, roots: tuple[str, ...] = ROOTS) -> list[Unit]:
    """Host directories of small files, each at most ``cap`` bytes, root after root until they
    hold ``total`` bytes (or the roots are exhausted)."""
    units: list[Unit] = []
    for root in roots:
        if sum(u.size for u in units) >= total:
            break
        units += _units(root, _scan(root), cap)
    if not units:
        raise SystemExit(f"no directory of small files under {', '.join(roots)} to build packages from")
    return units


def take(units: list[Unit], sizes: list[int]) -> list[list[Unit]]:
    """``units`` in turn (again from the start when they run out) into groups of about each size."""
    groups, k = [], 0
    for size in sizes:
        group: list[Unit] = []
        held = 0
        while held < size:
            u = units[k % len(units)]
            if group and held + u.size // 2 > size:
                break
            group.append(u)
            held += u.size
            k += 1
        groups.append(group)
    return groups


def cost_nix(rounds: int) -> str:
    """A pure computation of ``rounds`` x 1000 multiplications and additions (0: none)."""
    if rounds == 0:
        return "0\n"
    return (
        "# A pure computation costing about a second of evaluation, as `import <nixpkgs>` does.\n"
        "let f = builtins.foldl'; in\n"
        f"f (a: i: a + f builtins.add 0 (builtins.genList (j: i * j) 1000)) 0 (builtins.genList (i: i) {rounds})\n"
    )


def calibrate_cost(env: dict[str, str], seconds: float = 1.0) -> int:
    """The ``cost_nix`` rounds whose evaluation takes about ``seconds`` on this machine now."""

    def took(rounds: int) -> float:
        best = float("inf")
        for _ in range(2):
            start = time.monotonic()
            subprocess.run(
                ["nix-instantiate", "--eval", "-E", cost_nix(rounds)], env=env, capture_output=True, check=True
            )
            best = min(best, time.monotonic() - start)
        return best

    base, probe = took(0), 1000
    per_round = max(took(probe) - base, 1e-3) / probe
    return max(1, round(seconds / per_round))


def _script(units: list[Unit]) -> str:
    return " ".join(u.path for u in units)


def nix_file(shape: Shape, packages: list[list[Unit]], data: list[list[Unit]]) -> str:
    """The Nix file of the shape: ``svc<i>`` for each service."""
    lines = [
        f"# Generated by benchmarks/monorepo.py: {shape.packages} runtime packages, {shape.services} services.",
        '{ busybox ? "/bin/busybox", system ? builtins.currentSystem }:',
        "let",
        "  bb = busybox;",
        f"  bump = import ./{BUMP_FILE};",
        f"  cost = import ./{COST_FILE};",
        "  mk = name: script: derivation {",
        "    inherit name system;",
        "    builder = bb;",
        '    args = [ "sh" "-c" script ];',
        '    PATH = "/bin:/usr/bin";',
        "  };",
        "  # host directories (relative to /) copied into $out, and the paths this one references",
        "  copy = name: dirs: needs: mk name ''",
        "    ${bb} mkdir -p $out",
        "    cd / && ${bb} tar -cf - ${dirs} | ${bb} tar -xof - -C $out",
        '    ${bb} echo "${builtins.concatStringsSep " " (map toString needs)}" > $out/needs',
        "  '';",
    ]
    for i, units in enumerate(packages):
        parent = shape.parent(i)
        needs = f"rt{parent}" if parent is not None else ""
        version = "${bump}" if i == shape.bumped() else "1.0"
        lines.append(f'  rt{i} = copy "rt{i}-{version}" "{_script(units)}" [ {needs} ];')
    for s, units in enumerate(data):
        lines.append(f'  data{s} = copy "svc{s}-data-1.0" "{_script(units)}" [ ];')
    lines += [
        "  app = s: data: needs: mk \"svc${toString s}-app-1.0\" ''",
        "    ${bb} mkdir -p $out/bin",
        '    ${bb} echo "${data} ${builtins.concatStringsSep " " (map toString needs)}" > $out/needs',
        "    ${bb} echo '#!/bin/sh' > $out/bin/svc${toString s}",
        "    ${bb} chmod 0755 $out/bin/svc${toString s}",
        "  '';",
        "in builtins.seq cost {",
    ]
    for s in range(shape.services):
        uses = " ".join(f"rt{i}" for i in shape.uses(s))
        lines.append(f"  {SERVICE.format(s)} = app {s} data{s} [ {uses} ];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def build_file(shape: Shape) -> str:
    """One nix_oci_image per service, one layer per store path; bump.nix and cost.nix are
    dependencies, so the evaluation sees them."""
    out = [f'\nfiles(name="nix-inputs", sources=["{BUMP_FILE}", "{COST_FILE}"])\n']
    for attr in shape.attrs():
        out.append(
            f'nix_oci_image(name="{attr}", nix_file="{NIX_FILE}", attr="{attr}", layering="per-path", '
            f'max_layers={MAX_LAYERS}, dependencies=[":nix-inputs"])\n'
        )
    return "".join(out)


#: The flake of ``--flake``: the Nix file's services as its outputs, for this machine's system
#: (pure evaluation has no builtins.currentSystem); the same derivations.
FLAKE_FILE = "flake.nix"


def flake_nix(system: str) -> str:
    return (
        "# Generated by benchmarks/monorepo.py: the services of the Nix file as flake outputs.\n"
        f'{{ outputs = {{ self }}: import ./{NIX_FILE} {{ system = "{system}"; }}; }}\n'
    )


def flake_build_file(shape: Shape) -> str:
    """One nix_oci_image per service, each an output of the flake beside it (its files only)."""
    sources = [FLAKE_FILE, NIX_FILE, BUMP_FILE, COST_FILE]
    return "".join(
        f'nix_oci_image(name="{attr}", flake=".#{attr}", flake_sources={sources!r}, layering="per-path", '
        f"max_layers={MAX_LAYERS})\n"
        for attr in shape.attrs()
    ).replace("'", '"')


def bump_nix(version: str) -> str:
    return f'"{version}"\n'


def generate(root: Path, shape: Shape) -> None:
    """Write the Nix file, bump.nix (version 1.0) and cost.nix (0) into ``root``; the BUILD
    file's targets are :func:`build_file`."""
    cap = max(shape.package_bytes // 4, 4096)
    sizes = [shape.package_bytes] * shape.packages + [shape.data_bytes] * shape.services
    groups = take(host_units(sum(sizes), cap), sizes)
    (root / NIX_FILE).write_text(nix_file(shape, groups[: shape.packages], groups[shape.packages :]))
    (root / BUMP_FILE).write_text(bump_nix("1.0"))
    (root / COST_FILE).write_text(cost_nix(0))
