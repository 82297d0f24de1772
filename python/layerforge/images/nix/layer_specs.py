"""What one layer of a nix-image holds, as a native :class:`LayerSpec`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from layerforge._native import LayerSpec
from layerforge.images.nix import copy_to_root as ctr
from layerforge.images.nix.accounts import HOME_MODE, Account, add_account_entries
from layerforge.images.nix.perms import PermSpec
from layerforge.images.nix.store_path import STORE_DIR

NIX_LAYER = "containerd.io/snapshot/nix-layer"
NIX_STORE_PATH = "containerd.io/snapshot/nix-store-path"


def store_paths_spec(paths: Sequence[str], epoch: int, perms: Sequence[PermSpec] = ()) -> LayerSpec:
    """Store paths as they are in the store (modes kept, owners root), under /nix/store."""
    spec = LayerSpec(mtime=epoch, keep_setuid=True)
    spec.add_dir("/nix", 0o755)
    spec.add_dir(STORE_DIR, 0o755)
    for p in sorted(paths):
        if Path(p).is_dir() and not Path(p).is_symlink():
            spec.add_tree(p, p)
        else:
            spec.add_path(p, p)  # a store path can be a single file or symlink
    for rule in perms:
        spec.add_perm_rule(rule.pattern, rule.mode, rule.uid, rule.gid)
    return spec


def root_spec(copy_to_root: Sequence[str], mode: str, epoch: int, account: Account | None = None) -> LayerSpec:
    """The root layer: copy-to-root entries, and the account's /etc/passwd, /etc/group and
    home directory (owned by the user)."""
    spec = LayerSpec(mtime=epoch)
    _add_root(spec, copy_to_root, mode, account)
    return spec


def _add_root(spec: LayerSpec, copy_to_root: Sequence[str], mode: str, account: Account | None) -> None:
    entries = ctr.plan_root(copy_to_root, mode)
    if account is not None:
        add_account_entries(entries, account)
        spec.add_perm_rule(account.home_pattern(), HOME_MODE, account.uid, account.gid)
    ctr.add_to_spec(spec, entries)


def snapshotter_spec(
    closure_paths: Sequence[str], copy_to_root: Sequence[str], mode: str, epoch: int, account: Account | None = None
) -> tuple[LayerSpec, dict[str, str]]:
    """nix-snapshotter's single layer: an empty mountpoint per store path plus the root
    entries, annotated ``nix-layer`` and ``nix-store-path.<i>`` (sorted, from 0)."""
    spec = LayerSpec(mtime=epoch)
    spec.add_dir("/nix", 0o755)
    spec.add_dir(STORE_DIR, 0o755)
    paths = sorted(closure_paths)
    for path in paths:
        spec.add_dir(path, 0o555)
    _add_root(spec, copy_to_root, mode, account)
    annotations = {NIX_LAYER: "true"}
    for i, path in enumerate(paths):
        annotations[f"{NIX_STORE_PATH}.{i}"] = path
    return spec, annotations
