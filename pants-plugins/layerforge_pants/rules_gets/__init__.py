"""The backend's rules for Pants 2.17-2.29, where rules call each other with `Get` and
`MultiGet` (removed in Pants 2.32). `rules_calls` holds the same rules in the call-by-name
idiom; `engine.py` picks one by the running Pants version. Shared parts (field sets, argv
builders, checks) live in the backend's other modules; keep these bodies to their awaits."""

from __future__ import annotations

from layerforge_pants.rules_gets import images, kinds, nix, publish, tool


def rules() -> list[object]:
    return [*tool.rules(), *images.rules(), *nix.rules(), *kinds.rules(), *publish.rules()]
