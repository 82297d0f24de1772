"""The image kinds of the backend, one line each: the target and the modules whose `rules()`
register its `package`/`run` rules and field sets. A new kind is a folder (target, field
sets, rules) and a line here."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from pants.engine.target import Target

from layerforge_pants.index import rules as index_rules
from layerforge_pants.index.target import OciImageIndexTarget
from layerforge_pants.nix import evaluation_rules as nix_evaluation_rules
from layerforge_pants.nix import rules as nix_rules
from layerforge_pants.nix.target import NixOciImageTarget
from layerforge_pants.nydus import rules as nydus_rules
from layerforge_pants.nydus.target import NydusImageTarget
from layerforge_pants.remote import pull_rules as remote_pull_rules
from layerforge_pants.remote import rules as remote_rules
from layerforge_pants.remote.target import RemoteOciImageTarget
from layerforge_pants.unikraft import rules as unikraft_rules
from layerforge_pants.unikraft.target import UnikraftImageTarget


@dataclass(frozen=True)
class Kind:
    target: type[Target]
    rules: tuple[ModuleType, ...]


KINDS = (
    Kind(NixOciImageTarget, (nix_evaluation_rules, nix_rules)),
    Kind(UnikraftImageTarget, (unikraft_rules,)),
    Kind(NydusImageTarget, (nydus_rules,)),
    Kind(RemoteOciImageTarget, (remote_pull_rules, remote_rules)),
    Kind(OciImageIndexTarget, (index_rules,)),
)
