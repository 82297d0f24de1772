"""The image kinds of the backend, one line each. A kind is a folder: its `target.py` holds
the target class (with the `roles` it may play for other image targets, `goals/roles.py`)
and its `rules.py` a `rules()` registering its `package`/`run` rules and field sets. A new
kind is a folder and a line here; every list of the kinds a field accepts derives from the
roles (`goals/roles.py: allowed`)."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from pants.engine.target import Target

from layerforge_pants.goals import roles
from layerforge_pants.index.target import OciImageIndexTarget
from layerforge_pants.nix.target import NixOciImageTarget
from layerforge_pants.nydus.target import NydusImageTarget
from layerforge_pants.remote.target import RemoteOciImageTarget
from layerforge_pants.unikraft.target import UnikraftImageTarget

#: In the order messages and help list them.
KINDS: tuple[type[Target], ...] = (
    NixOciImageTarget,
    RemoteOciImageTarget,
    OciImageIndexTarget,
    NydusImageTarget,
    UnikraftImageTarget,
)
roles.register_kinds(KINDS)


def rules_module(kind: type[Target]) -> ModuleType:
    """The `rules.py` of ``kind``'s folder."""
    return import_module(f"{kind.__module__.rsplit('.', 1)[0]}.rules")
