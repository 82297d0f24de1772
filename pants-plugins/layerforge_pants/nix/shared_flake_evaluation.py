"""One Nix evaluation per flake for every nix_oci_image that reads it (as shared_evaluation.py
does for Nix files): a monorepo's images over one flake share its inputs (a nixpkgs), which
cost most of an evaluation, so the flake is evaluated once per run for all their outputs.

`nix eval` takes one installable, so the outputs are read through `builtins.getFlake`, which
pure evaluation allows only for a locked reference. Two Nix runs in the image's sandbox give
it: `nix flake metadata --json --no-update-lock-file path:./DIR` (the store path Nix copied
the directory to, its narHash and lastModified: the flake `nix eval path:./DIR#OUT` reads,
`self` and all) and, unless the images name a `system`, `nix show-config --json` (the
system `nix eval` would resolve `#OUT` for). Then one pure `nix eval --json --expr` resolves
each output in the flake's outputs as `nix eval` does, stopping at the first it finds
(:func:`candidates`: `packages.SYSTEM.OUT`, `legacyPackages.SYSTEM.OUT`, then `OUT`; the
defaults without one) and prints each one's
derivation as the image's own evaluation would (flake.TO_DERIVATION). Anything unexpected, a
failure included, gives no answer: each image then evaluates alone, and an error names it.

Plain Python (no engine types), as shared_evaluation.py."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import Digest

from layerforge_pants.nix.evaluation import _DERIVATION, NixEvaluation
from layerforge_pants.nix.flake import FLAKE_FEATURES, TO_DERIVATION, FlakeRef
from layerforge_pants.nix.shared_evaluation import nix_string
from layerforge_pants.nix.target import STORE_PATH

_NAR_HASH = re.compile(r"^sha256-[A-Za-z0-9+/]{43}=\Z")
_SYSTEM = re.compile(r"^[A-Za-z0-9_]+-[A-Za-z0-9_-]+\Z")


@dataclass(frozen=True)
class SharedFlake:
    """What makes evaluations of one flake shareable (its directory, the `system` asked, the
    files of its sandbox), and the output fragments all its images ask, sorted."""

    directory: str
    system: str | None
    sources: Digest
    fragments: tuple[str | None, ...]

    def ref(self, fragment: str | None) -> FlakeRef:
        return FlakeRef(self.directory, fragment)


def shareable(ref: FlakeRef) -> bool:
    """Whether the output ``ref`` names can be resolved here as `nix eval` resolves it: a
    fragment Nix would percent-decode, or one its attribute path parser refuses, is left to
    the image's own evaluation."""
    return ref.fragment is None or ("%" not in ref.fragment and attr_path(ref.fragment) is not None)


def attr_path(fragment: str) -> list[str] | None:
    """``fragment`` split as Nix's ``parseAttrPath`` splits it (``a."b.c".d``: three names; an
    empty name between two dots is kept, a trailing one dropped), or None where Nix refuses it
    (a quote left open)."""
    names, current, i = [], "", 0
    while i < len(fragment):
        c = fragment[i]
        if c == ".":
            names.append(current)
            current = ""
        elif c == '"':
            end = fragment.find('"', i + 1)
            if end < 0:
                return None
            current += fragment[i + 1 : end]
            i = end
        else:
            current += c
        i += 1
    return [*names, current] if current else names


def candidates(fragment: str | None, system: str) -> list[list[str]]:
    """The attribute paths `nix eval path:DIR#FRAGMENT` tries, in order (Nix 2.x's
    InstallableFlake: each default prefix before the first path, then the paths themselves;
    without a fragment the paths are the default package's)."""
    prefixes = [["packages", system], ["legacyPackages", system]]
    if fragment is None:
        paths = [["packages", system, "default"], ["defaultPackage", system]]
    else:
        paths = [attr_path(fragment) or []]
    return [[*prefix, *paths[0]] for prefix in prefixes] + paths


def metadata_evaluation(shared: SharedFlake, address: Address) -> NixEvaluation:
    """`nix flake metadata` of the flake's directory in the sandbox: what `getFlake` needs."""
    installable = shared.ref(None).installable()
    argv = (*FLAKE_FEATURES, "flake", "metadata", "--json", "--no-update-lock-file", installable)
    return NixEvaluation("nix", argv, shared.sources, address, "flake", f"nix flake metadata {installable}")


def system_evaluation(shared: SharedFlake, address: Address) -> NixEvaluation:
    """`nix show-config --json`: the system Nix resolves an output for when none is asked."""
    argv = (*FLAKE_FEATURES, "show-config", "--json")
    return NixEvaluation("nix", argv, shared.sources, address, "flake", "nix show-config")


def locked_url(metadata: bytes) -> str | None:
    """The locked `path:` reference of the store copy `nix flake metadata --json` printed, or
    None when it printed anything else."""
    try:
        doc = json.loads(metadata)
        locked, path = doc["locked"], doc["path"]
        nar_hash, last_modified = locked["narHash"], locked["lastModified"]
    except (ValueError, KeyError, TypeError):
        return None
    if locked.get("type") != "path" or not isinstance(path, str) or not re.match(rf"^{STORE_PATH}\Z", path):
        return None
    if not isinstance(nar_hash, str) or not _NAR_HASH.match(nar_hash) or type(last_modified) is not int:
        return None
    query = urllib.parse.urlencode({"lastModified": last_modified, "narHash": nar_hash})
    return f"path:{path}?{query}"


def config_system(config: bytes) -> str | None:
    """The ``system`` setting `nix show-config --json` printed, or None."""
    try:
        value = json.loads(config)["system"]["value"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) and _SYSTEM.match(value) else None


def outputs_evaluation(shared: SharedFlake, url: str, system: str, address: Address) -> NixEvaluation:
    """The one pure `nix eval` of every output of ``shared``, a JSON list of ``DRV!OUT`` in
    the order of its fragments."""
    lookups = " ".join(
        "(drv (resolve [ "
        + " ".join("[ " + " ".join(map(nix_string, p)) + " ]" for p in candidates(f, system))
        + " ]))"
        for f in shared.fragments
    )
    expression = (
        f"let outputs = (builtins.getFlake {nix_string(url)}).outputs; "
        "at = path: builtins.foldl' (v: n: if v != null && builtins.isAttrs v && builtins.hasAttr n v "
        "then builtins.getAttr n v else null) outputs path; "
        'resolve = paths: if paths == [ ] then throw "layerforge: the flake does not provide the output" '
        "else let v = at (builtins.head paths); in if v != null then v else resolve (builtins.tail paths); "
        f"drv = {TO_DERIVATION}; in [ {lookups} ]"
    )
    systems = ("--system", shared.system) if shared.system else ()
    argv = (*FLAKE_FEATURES, "eval", "--json", *systems, "--expr", expression)
    what = (
        f"nix eval of {len(shared.fragments)} outputs of {shared.ref(None).installable()} for the images that read it"
    )
    return NixEvaluation("nix", argv, shared.sources, address, "flake", what)


def shared_flake_derivations(
    shared: SharedFlake, exit_code: int, stdout: bytes
) -> dict[str | None, tuple[str, ...]] | None:
    """Each fragment's derivation output (``DRV!OUT``) from the evaluation, or None when it
    failed or printed anything else than one per fragment."""
    if exit_code != 0:
        return None
    try:
        printed = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(printed, list) or len(printed) != len(shared.fragments):
        return None
    by_fragment: dict[str | None, tuple[str, ...]] = {}
    for fragment, line in zip(shared.fragments, printed):
        m = _DERIVATION.match(line) if isinstance(line, str) else None
        if not m:
            return None
        by_fragment[fragment] = (f"{m.group(1)}!{m.group(2) or 'out'}",)
    return by_fragment


def sorted_fragments(fragments: Sequence[str | None]) -> tuple[str | None, ...]:
    """``fragments`` without repeats, in one order (None, the default output, first)."""
    return tuple(sorted(set(fragments), key=lambda f: (f is not None, f or "")))


def outputs_of(by_fragment: Mapping[str | None, tuple[str, ...]], refs: Sequence[FlakeRef]) -> tuple[str, ...] | None:
    """The derivation outputs of ``refs`` together, sorted, or None if one has none."""
    if any(r.fragment not in by_fragment for r in refs):
        return None
    return tuple(sorted({o for r in refs for o in by_fragment[r.fragment]}))
