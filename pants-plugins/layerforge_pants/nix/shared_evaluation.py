"""One Nix evaluation per Nix file for every nix_oci_image that reads it: a monorepo's images
share a Nix file whose imports (a `import <nixpkgs>`, a package set) cost most of an
evaluation, so the file is evaluated once per run for all their attributes, not once per
target.

The process is ``nix-instantiate`` of a wrapper in the sandbox,
``{ file = import ./FILE; separator = <a derivation never built>; }``, with ``-A file.ATTR -A
separator`` per attribute: each attribute goes through nix-instantiate's own attribute paths,
auto-calling (``--argstr``) and derivation collection exactly as ``-A ATTR`` on the file, and
the separator's derivation, printed after each, says where one attribute's derivations end.
Every image whose file, ``argstrs`` and ``system`` are the same asks for the same process (the
attributes of all of them, sorted), which Pants runs once per run (never cached, as every
evaluation: see evaluation.py). If it fails (one image's attribute is broken, or needs files
of dependencies only that image has), each image evaluates its own attributes as before, so
errors name the image and its field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import Digest

from layerforge_pants.nix.evaluation import _DERIVATION, NixEvaluation

#: The wrapper's file name in the evaluation's sandbox, beside the image's files.
WRAPPER = ".layerforge-evaluate.nix"
#: The name of the separator's derivation (instantiated, never built).
SEPARATOR = "layerforge-evaluation-separator"


@dataclass(frozen=True)
class SharedAttrs:
    """What makes evaluations of one Nix file shareable, and the attributes all its images ask."""

    path: str
    argstrs: tuple[tuple[str, str], ...]
    system: str | None
    attrs: tuple[str, ...]


def nix_string(text: str) -> str:
    """``text`` as a Nix string literal (JSON's escapes, plus ``${`` escaped)."""
    return json.dumps(text).replace("${", "\\${")


def wrapper_source(path: str) -> str:
    """The wrapper Nix file that imports ``path`` (relative to the build root, where the
    wrapper lies) and defines the separator."""
    return (
        f"{{ file = import (./. + {nix_string('/' + path)}); "
        f'separator = derivation {{ name = "{SEPARATOR}"; system = "layerforge"; builder = "layerforge"; }}; }}\n'
    )


def shared_evaluation(shared: SharedAttrs, digest: Digest, address: Address) -> NixEvaluation:
    """The evaluation of every attribute of ``shared`` in the sandbox ``digest`` (the image's
    files and the wrapper); ``address`` is the image that asked first (Pants shows one)."""
    argv = [f"./{WRAPPER}"]
    for attr in shared.attrs:
        argv += ["-A", f"file.{attr}" if attr else "file", "-A", "separator"]
    argv += [a for k, v in shared.argstrs for a in ("--argstr", k, v)]
    if shared.system:
        argv += ["--argstr", "system", shared.system, "--system", shared.system]
    what = f"nix-instantiate {shared.path} for {len(shared.attrs)} attributes of the images that read it"
    what += f" --system {shared.system}" if shared.system else ""
    return NixEvaluation("nix-instantiate", tuple(argv), digest, address, "nix_file", what)


def shared_derivations(shared: SharedAttrs, exit_code: int, stdout: bytes) -> dict[str, tuple[str, ...]] | None:
    """Each attribute's derivation outputs (``DRV!OUT``, sorted) from the evaluation's exit
    code and output, or None when it failed or printed anything else than a separated list per
    attribute."""
    if exit_code != 0:
        return None
    groups: list[list[str]] = [[]]
    for line in stdout.decode("utf-8", "replace").split():
        m = _DERIVATION.match(line)
        if not m:
            return None
        if m.group(1).endswith(f"-{SEPARATOR}.drv") and m.group(2) is None:
            groups.append([])
        else:
            groups[-1].append(f"{m.group(1)}!{m.group(2) or 'out'}")
    if groups[-1] or len(groups) != len(shared.attrs) + 1:
        return None
    return {attr: tuple(sorted(set(g))) for attr, g in zip(shared.attrs, groups)}


def union(by_attr: Mapping[str, tuple[str, ...]], attrs: Iterable[str]) -> tuple[str, ...]:
    """The derivation outputs of ``attrs`` together, sorted (as one ``-A`` per attribute)."""
    return tuple(sorted({o for a in attrs for o in by_attr[a]}))
