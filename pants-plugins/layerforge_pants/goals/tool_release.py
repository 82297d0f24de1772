"""The tool release the plugin runs. layerforge-pants is released with one layerforge (the
same version, one number for both: Cargo.toml's workspace version) and ships its lockfile as
the tool's default (``layerforge.lock``, written by scripts/tool-lockfile); a repository that
installs the tool from a resolve of its own must lock that version too. These are the checks,
as one-line errors, that Pants runs before the first layerforge process."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from layerforge_pants import __version__

#: The distribution the plugin runs as its tool.
TOOL = "layerforge"


class ToolReleaseMismatch(Exception):
    pass


def lock_document(lockfile: str) -> Any:
    """The JSON of a Pex lockfile, Pants' ``//`` header lines dropped."""
    return json.loads("\n".join(line for line in lockfile.splitlines() if not line.lstrip().startswith("//")))


def locked_versions(lockfile: str) -> list[str]:
    """The versions of the tool a Pex lockfile (Pants' ``//`` header lines first) locks."""
    try:
        document = lock_document(lockfile)
        return sorted(
            {
                str(requirement["version"])
                for resolve in document["locked_resolves"]
                for requirement in resolve["locked_requirements"]
                if requirement.get("project_name") == TOOL
            }
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def check_resolve(resolve: str, path: str, lockfile: str | None) -> None:
    """Raise :class:`ToolReleaseMismatch` unless the resolve ``[layerforge].install_from_resolve``
    names (its lockfile at ``path``, read as ``lockfile``) locks this plugin's version."""
    where = f"the resolve `{resolve}` ([layerforge].install_from_resolve, {path})"
    if lockfile is None:
        raise ToolReleaseMismatch(
            f"layerforge-pants {__version__}: {where} has no lockfile; "
            f"add {TOOL}=={__version__} to it and run `pants generate-lockfiles --resolve={resolve}`."
        )
    versions = locked_versions(lockfile)
    if versions == [__version__]:
        return
    found = f"locks {TOOL} {' and '.join(versions)}" if versions else f"does not lock {TOOL}"
    raise ToolReleaseMismatch(
        f"layerforge-pants {__version__} runs {TOOL} {__version__}, but {where} {found}: "
        f"require {TOOL}=={__version__} there and run `pants generate-lockfiles --resolve={resolve}`"
        + (f", or install layerforge-pants=={versions[0]} in [GLOBAL].plugins." if len(versions) == 1 else ".")
    )


def check_default_lockfile() -> None:
    """Raise :class:`ToolReleaseMismatch` if the plugin carries no lockfile for its tool (a
    wheel made by a bare ``pip wheel pants-plugins/``, or the plugin's source tree, hold a
    placeholder that locks no artifact)."""
    document = lock_document(resources.files("layerforge_pants").joinpath("layerforge.lock").read_text())
    artifacts = [
        artifact
        for resolve in document.get("locked_resolves", [])
        for requirement in resolve.get("locked_requirements", [])
        for artifact in requirement.get("artifacts", [])
    ]
    if not artifacts:
        raise ToolReleaseMismatch(
            f"layerforge-pants {__version__} holds no lockfile for {TOOL} (it was not built by scripts/dist): "
            f"install the layerforge-pants wheel scripts/dist writes, or set [layerforge].install_from_resolve "
            f"to a resolve that locks {TOOL}=={__version__}."
        )
