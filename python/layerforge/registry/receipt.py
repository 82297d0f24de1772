"""Push receipts: what a push that ended well left in the registry, for the native
``layerforge push`` (``rust/layerforge-cli/src/receipt.rs``) to check instead of pushing again.

The native command restates none of the push's rules. A receipt is keyed by the push's
command line (arguments and ``$LAYERFORGE_REGISTRY_TIMEOUT``): the same command finds it,
any other one does not, and run from another directory (a new Pants sandbox) it checks the
layout found there by the same relative path. It names the push it is for (the key, the
command line, the layout directory as ``SOURCE`` gives it, the registry, the repository and
the tags), and the native command uses it only when those are what its own command line
asks for: a receipt cannot send the check to another registry, repository, tag or layout.
It holds the layout's ``index.json`` digest (an unchanged index means the same image and
referrers, blobs being named by their digests), the blob set (each must still be a regular
file of its size), the root digest (each tag must still name it), the referrers (each must
still be stored, and where the registry has no referrers API, the ``sha256-<hex>`` index
must still be the one this push left), the ``Accept`` header to ask with and the lines a
re-push that sends nothing prints, and for a push given ``--record FILE`` the publish record
entry such a re-push adds to FILE (which the native command writes). Anything else, and any
doubt, goes to Python. Receipts
are written only for plain-HTTP registries the native command can ask (loopback,
``--insecure``), never for ``--verbose`` pushes (whose per-blob lines are Python's) and
never hold credentials: the native command asks anonymously, and a registry that wants
credentials sends it to Python.

Receipts are cache files under :mod:`layerforge.trust.cache_files`' rule: the native
command ignores one that is not private to the user, the push then reports it in one warning
line and replaces it, and none is written into a directory someone else can write.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from layerforge.cache_dir import default_cache_dir
from layerforge.layout.atomic import atomic_write
from layerforge.model.canonical_json import canonical_json
from layerforge.model.digest import sha256_digest
from layerforge.trust import cache_files

log = logging.getLogger(__name__)

VERSION = 2
KIND = "layerforge-push-receipt"
TIMEOUT_ENV = "LAYERFORGE_REGISTRY_TIMEOUT"
WHAT = "the push receipt"


def receipt_dir() -> Path:
    return default_cache_dir() / "push-receipts"


def receipt_key(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """sha256 of ``KIND NUL VERSION NUL arg NUL ... NUL timeout`` (OS bytes): the native
    command hashes its own command line the same way."""
    parts = [KIND.encode(), str(VERSION).encode(), *map(os.fsencode, argv)]
    parts.append(os.fsencode(environ.get(TIMEOUT_ENV, "")))
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def receipt_path(key: str) -> Path:
    return receipt_dir() / f"{key}.json"


def write_receipt(key: str, document: dict[str, object]) -> None:
    """Write (atomically) or, on any error, leave no receipt: it is an optimisation only."""
    path = receipt_path(key)
    root = default_cache_dir()
    if not cache_files.private_dir(root, path.parent, WHAT):
        return
    # One the native command ignored (another user's) is reported here, then replaced.
    cache_files.usable(root, path, WHAT)
    try:
        receipt = {"kind": KIND, "version": VERSION, "key": key, **document}
        atomic_write(path, canonical_json(receipt), path.parent, mode=cache_files.FILE_MODE)
    except OSError as e:
        log.debug("no push receipt written (%s)", e)
        forget_receipt(key)


def forget_receipt(key: str) -> None:
    with contextlib.suppress(OSError):
        receipt_path(key).unlink()


def index_digest(index_bytes: bytes) -> str:
    return sha256_digest(index_bytes)
