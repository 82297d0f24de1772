"""Files an image target takes from its `dependencies` (`files`, `resources`, generated
code), and fields that name one of them by path."""

from __future__ import annotations

import os

from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.core.util_rules.source_files import SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.fs import Snapshot
from pants.engine.target import InvalidFieldException, SourcesField, TransitiveTargets


def sources_request(transitive: TransitiveTargets, *own: SourcesField) -> SourceFilesRequest:
    """The files of ``transitive``'s dependencies (codegen applied), plus ``own``."""
    types = (FileSourceField, ResourceSourceField, *(type(f) for f in own))
    return SourceFilesRequest(
        [*own, *(t.get(SourcesField) for t in transitive.dependencies)], for_sources_types=types, enable_codegen=True
    )


def locate(snapshot: Snapshot, address: Address, field: str, value: str, *, directory: bool = False) -> str:
    """The path in ``snapshot`` that ``value`` names: relative to the BUILD file's directory,
    else from the build root. With ``directory``, a directory holding files also counts."""
    candidates = dict.fromkeys([os.path.normpath(os.path.join(address.spec_path, value)), os.path.normpath(value)])
    for c in candidates:
        if c in snapshot.files:
            return c
        if directory and any(f.startswith(c + "/") for f in snapshot.files):
            return c
    what = "file or directory" if directory else "file"
    near = ", ".join(sorted(snapshot.files)[:8]) or "none"
    raise InvalidFieldException(
        f"The `{field}` field of {address} names {value!r}, but no dependency provides that {what} "
        f"(looked for {' and '.join(candidates)}; files from dependencies: {near}). Add a `files` or "
        "`resources` target holding it to `dependencies`."
    )
