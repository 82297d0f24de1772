"""What a Pants run of the layerforge backend executed, read from the sandboxes it kept
(``--keep-sandboxes=always``): one line "Preserving local process execution dir DIR for
DESCRIPTION" per process that ran (a cache hit runs nothing and keeps nothing).

A layer process's sandbox holds the ``__run.sh`` Pants writes to replay it, whose argv is the
plan's ``nix-layer --job DOCUMENT`` (python/layerforge/images/nix/layer_job_document.py): the
document lists each layer the process built and the store paths it holds. That is what the
process was asked to build, read from the process itself, not inferred from descriptions.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_PRESERVED = re.compile(r"Preserving local process execution dir (\S+) for (.*)$")
#: The kinds of processes, by the start of their descriptions (pants-plugins/layerforge_pants).
KINDS = {
    "evaluate": "Evaluate the Nix derivations of ",
    "plan": "Plan the layers of ",
    "layer": "Build layer",
    "assemble": "Assemble the image of ",
    "record": "Write the build record ",
}


@dataclass
class Executed:
    """The processes a run executed, by kind; the store-path layers its layer processes built
    (each the tuple of its store paths) and the sandboxes' other layers, by kind."""

    processes: Counter[str] = field(default_factory=Counter)
    store_path_layers: list[tuple[str, ...]] = field(default_factory=list)
    other_layers: Counter[str] = field(default_factory=Counter)

    def built_paths(self) -> Counter[str]:
        """How many times each store path was put into a layer."""
        return Counter(p for layer in self.store_path_layers for p in layer)


#: The job argument as __run.sh writes it: ``--job $'...'`` (bash's ANSI-C quoting) or a plain
#: single-quoted word.
_JOB = re.compile(r"--job[= ](\$'(?:[^'\\]|\\.)*'|'[^']*')")
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "v": "\v"}


def _unquote(word: str) -> str:
    """The text of one shell word quoted as ``$'...'`` or ``'...'``."""
    if not word.startswith("$"):
        return word[1:-1]

    def escape(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] == "x":
            return chr(int(e[1:], 16))
        if e[0] in "01234567":
            return chr(int(e, 8))
        return _ESCAPES.get(e, e)

    return _ESCAPE.sub(escape, word[2:-1])


def _job_document(run_sh: str, where: Path) -> dict[str, object]:
    m = _JOB.search(run_sh)
    if not m:
        raise SystemExit(f"{where}/__run.sh holds no `nix-layer --job DOCUMENT` argv: the layer job format changed")
    return dict(json.loads(_unquote(m.group(1))))


def executed(stderr: str, *, remove: bool = True) -> Executed:
    """The processes the run whose stderr is ``stderr`` executed; their kept sandboxes are
    removed once read (unless ``remove`` is false), whatever happens."""
    kept = [(Path(m.group(1)), m.group(2)) for m in map(_PRESERVED.search, stderr.splitlines()) if m]
    out = Executed()
    try:
        for sandbox, description in kept:
            kind = next((k for k, prefix in KINDS.items() if description.startswith(prefix)), "other")
            out.processes[kind] += 1
            if kind != "layer":
                continue
            layers = _job_document((sandbox / "__run.sh").read_text(), sandbox)["layers"]
            for layer in layers:  # type: ignore[attr-defined]
                if layer["kind"] == "store-paths":
                    out.store_path_layers.append(tuple(layer["storePaths"]))
                else:
                    out.other_layers[layer["kind"]] += 1
    finally:
        for sandbox, _ in kept if remove else ():
            shutil.rmtree(sandbox, ignore_errors=True)
    return out
