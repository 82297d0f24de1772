"""The backend's rules for Pants 2.30 and later, in the call-by-name idiom (`await rule(x,
**implicitly())`, `concurrently(...)`): the same rules as `rules_gets` (Pants 2.17-2.29),
chosen by `engine.py`. Shared parts (field sets, argv builders, checks) live in the backend's
other modules; keep these bodies to their awaits."""

from __future__ import annotations

from layerforge_pants.rules_calls import images, kinds, nix, publish, tool


def rules() -> list[object]:
    return [*tool.rules(), *images.rules(), *nix.rules(), *kinds.rules(), *publish.rules()]
