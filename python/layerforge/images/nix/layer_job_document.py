"""The layer job document: what one ``layerforge nix-layer`` process builds, as one typed,
versioned JSON document (``nix-layer --job JSON``).

The plan writes one per batch of layers (:meth:`LayerJobDocument.argv` is the ``argv`` of the
plan file's job); ``nix-layer`` reads it back here, and the native command reads it with serde
(``rust/layerforge-cli/src/layer_job.rs``) to build store-path layers without Python. It holds
resolved values only, so that the native reader needs no table of this package: the layer's
media type (:data:`~layerforge.model.media_types.LAYER_BY_COMPRESSION` is read here, where
the document is written and read), the compression algorithm and level, the architecture
executables are checked against (a name the native core's ELF table knows; the core judges
it, on both sides) and the perms as structured rules. ``tests/vectors/layer_job.json`` holds
documents both readers parse and documents they refuse.

Version 1, every field required and no other allowed (``null`` where a value may be absent)::

    {"kind": "layerforge-layer-job", "version": 1, "layers": [LAYER, ...]}
    LAYER = {"out": DIR, "kind": "store-paths" | "root" | "snapshotter", "mtime": SECONDS,
             "storePaths": [PATH, ...], "copyToRoot": [PATH, ...],
             "copyToRootMode": "symlink" | "copy",
             "account": null | {"user": NAME, "uid": N, "group": NAME, "gid": N},
             "perms": [{"pattern": REGEX, "mode": N | null, "uid": N | null, "gid": N | null}, ...],
             "compression": {"algorithm": "gzip" | "zstd" | "none", "level": N | null},
             "mediaType": MEDIA_TYPE, "checkArch": ARCH | null}

A store-path layer holds ``storePaths`` (and ``perms``); a root layer ``copyToRoot`` entries
and/or the ``account``'s files; nix-snapshotter's layer a mountpoint per ``storePaths`` entry
plus the root entries, always gzip at the default level, unchecked. Every layer is written
into its own ``out`` directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from layerforge import option_rules
from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.nix.accounts import MAX_ID, Account
from layerforge.images.nix.copy_to_root import MODES
from layerforge.images.nix.layer_jobs import (
    KINDS,
    ROOT,
    SNAPSHOTTER,
    SNAPSHOTTER_COMPRESSION,
    STORE_PATHS,
    LayerBatch,
    LayerJob,
)
from layerforge.images.nix.perms import PermSpec
from layerforge.images.nix.store_path import parse_store_path
from layerforge.model.canonical_json import canonical_json
from layerforge.model.media_types import LAYER_BY_COMPRESSION
from layerforge.trust.json_shape import MAX_DEPTH, MAX_INT, Fields, ShapeError
from layerforge.trust.text import has_control, shown

KIND = "layerforge-layer-job"
#: The document's schema; a reader refuses any other version.
VERSION = 1
#: The fields of the document and of each layer: no other is allowed.
DOCUMENT_FIELDS = ("kind", "version", "layers")
LAYER_FIELDS = (
    "out", "kind", "mtime", "storePaths", "copyToRoot", "copyToRootMode", "account", "perms", "compression",
    "mediaType", "checkArch",
)  # fmt: skip
ACCOUNT_FIELDS = ("user", "uid", "group", "gid")
PERM_FIELDS = ("pattern", "mode", "uid", "gid")
COMPRESSION_FIELDS = ("algorithm", "level")
#: A perm rule's mode: permission bits with setuid, setgid and sticky.
MAX_MODE = 0o7777


@dataclass(frozen=True)
class JobLayer:
    """One layer of the document: the directory it is written into and the job building it."""

    out: str
    job: LayerJob

    def to_json(self) -> dict[str, Any]:
        job = self.job
        return {
            "out": self.out,
            "kind": job.kind,
            "mtime": job.mtime,
            "storePaths": list(job.store_paths),
            "copyToRoot": list(job.copy_to_root),
            "copyToRootMode": job.copy_to_root_mode,
            "account": None if job.account is None else job.account.to_json(),
            "perms": [{"pattern": p.pattern, "mode": p.mode, "uid": p.uid, "gid": p.gid} for p in _perms(job)],
            "compression": {"algorithm": job.compression, "level": job.level},
            "mediaType": LAYER_BY_COMPRESSION[job.compression],
            "checkArch": job.machine,
        }


@dataclass(frozen=True)
class LayerJobDocument:
    """The layers one ``nix-layer`` process builds, in order, each into its own directory."""

    layers: tuple[JobLayer, ...]

    @classmethod
    def of_batch(cls, batch: LayerBatch) -> LayerJobDocument:
        """The document of a plan's batch: each job into its layer directory."""
        return cls(tuple(JobLayer(out, job) for out, job in zip(batch.outs, batch.jobs)))

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, "version": VERSION, "layers": [layer.to_json() for layer in self.layers]}

    def dumps(self) -> str:
        """The document as ``--job`` takes it: canonical JSON (sorted keys, no whitespace)."""
        return canonical_json(self.to_json()).decode("utf-8")

    def argv(self) -> tuple[str, ...]:
        """``layerforge nix-layer`` building every layer of the document."""
        return ("nix-layer", "--job", self.dumps())

    def check_dirs(self) -> None:
        """Each layer directory once, by where it resolves: ``L``, ``x/../L`` and a link to
        ``L`` are one directory (two layers would race for it, and the first digest printed
        would not be the one left)."""
        seen: dict[str, int] = {}
        for i, layer in enumerate(self.layers):
            first = seen.setdefault(os.path.realpath(layer.out), i)
            if first != i:
                raise UsageError(
                    "--job",
                    f"'layers[{i}].out' {shown(repr(layer.out))} names the same directory as "
                    f"{shown(repr(self.layers[first].out))}: each layer directory is given once",
                )

    @classmethod
    def loads(cls, text: str | bytes, where: str = "--job") -> LayerJobDocument:
        """The document in ``text``; anything else is a one-line :class:`ShapeError` naming
        ``where`` and the field."""
        return cls.from_json(_parse(text, where), where)

    @classmethod
    def from_json(cls, obj: Any, where: str = "--job") -> LayerJobDocument:
        f = Fields(obj, where)
        if not f.has("kind"):
            f.missing("kind", "")
        kind = f.raw("kind")
        if kind != KIND:
            raise ShapeError(f"{where}: not a layer job document ('kind' is {_value(kind)}, not {KIND!r})")
        version = f.raw("version")
        if isinstance(version, bool) or version != VERSION:
            raise ShapeError(
                f"{where}: layer job version {_value(version)} is not {VERSION} (made by another layerforge)"
            )
        _only(f, DOCUMENT_FIELDS)  # after the version: another version may have other fields
        layers = f.objects("layers", required=True)
        if not layers:
            raise ShapeError(f"{where}: 'layers' is empty: a job builds at least one layer")
        read = tuple(_layer(layer) for layer in layers)
        seen: dict[str, int] = {}
        for i, layer in enumerate(read):
            first = seen.setdefault(layer.out, i)
            if first != i:
                raise ShapeError(
                    f"{where}: 'layers[{i}].out' {shown(repr(layer.out))} is the out of layers[{first}] too: "
                    "each layer directory is given once"
                )
        return cls(read)


def plan_job(batch: LayerBatch) -> dict[str, Any]:
    """The batch as the plan file holds it, all a build system reads of it: the kind of its
    layers, the layer directories it writes and the argv that writes them."""
    return {"kind": batch.jobs[0].kind, "outs": list(batch.outs), "argv": list(LayerJobDocument.of_batch(batch).argv())}


def _perms(job: LayerJob) -> tuple[PermSpec, ...]:
    for p in job.perms:
        if p.owner is not None or p.group is not None:
            raise LayerforgeError(f"--perms: {p.to_arg()!r} names an owner that was never resolved")
    return job.perms


def _parse(text: str | bytes, where: str) -> Any:
    """JSON without floats, NaN, duplicate keys or lone surrogates (serde's reading of it)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        text.encode("utf-8")
        obj = json.loads(text, parse_float=_refuse_number, parse_constant=_refuse_number, object_pairs_hook=_object)
        json.dumps(obj, ensure_ascii=False).encode("utf-8")  # a lone surrogate (\\ud800) is no text
        return obj
    except RecursionError:
        raise ShapeError(f"{where}: nested more than {MAX_DEPTH} levels deep") from None
    except UnicodeError:
        raise ShapeError(f"{where}: not Unicode text (a lone surrogate, or bytes that are not UTF-8)") from None
    except ValueError as e:  # JSONDecodeError, the refusals below
        raise ShapeError(f"{where}: not a JSON layer job document: {shown(e, 300)}") from None


def _refuse_number(text: str) -> NoReturn:
    raise ValueError(f"number {text[:40]} is not an integer")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"key {key[:40]!r} is given twice")
        obj[key] = value
    return obj


def _value(value: object) -> str:
    return shown(repr(value), 60)


def _only(f: Fields, fields: Sequence[str]) -> None:
    for key in f.obj:
        if key not in fields:
            raise ShapeError(f"{f.where}: {shown(repr(f.field(key)), 80)} is not a field of the layer job document")
    for key in fields:
        if key not in f.obj:
            f.missing(key, "")


def _fail(f: Fields, key: str, message: str) -> NoReturn:
    raise ShapeError(f"{f.where}: '{shown(f.field(key))}' {message}")


def _choice(f: Fields, key: str, choices: Sequence[str]) -> str:
    value = f.string(key, required=True)
    if value is None or value not in choices:
        _fail(f, key, f"is {_value(value)}, not one of {', '.join(choices)}")
    return value


def _store_paths(f: Fields, key: str) -> tuple[str, ...]:
    value = f.raw(key)
    if not isinstance(value, list):
        f.fail(key, "must be a list of strings", value)
    paths = f.strings(key) or ()
    for i, path in enumerate(paths):
        name = f"'{shown(f.field(key))}[{i}]'"
        try:
            parsed = parse_store_path(path, name)
        except LayerforgeError as e:
            raise ShapeError(f"{f.where}: {e}") from None
        if parsed.path != path:
            raise ShapeError(f"{f.where}: {name}: {_value(path)} ends in '/'; give the store path {parsed.path!r}")
    return paths


def _layer(f: Fields) -> JobLayer:
    _only(f, LAYER_FIELDS)
    out = f.string("out", required=True)
    assert out is not None
    if not out or has_control(out):
        _fail(f, "out", f"{_value(out)} is not a directory name (empty, or with control characters)")
    kind = _choice(f, "kind", KINDS)
    mtime = f.integer("mtime", required=True, maximum=MAX_INT)
    assert mtime is not None
    store_paths = _store_paths(f, "storePaths")
    copy_to_root = _store_paths(f, "copyToRoot")
    mode = _choice(f, "copyToRootMode", MODES)
    account = _account(f)
    perms = _perm_rules(f)
    compression, level = _compression(f)
    media_type = f.string("mediaType", required=True)
    if media_type != LAYER_BY_COMPRESSION[compression]:
        _fail(
            f, "mediaType", f"is {_value(media_type)}: a {compression} layer is {LAYER_BY_COMPRESSION[compression]!r}"
        )
    check_arch = f.raw("checkArch")
    if check_arch is not None and (not isinstance(check_arch, str) or not check_arch or has_control(check_arch)):
        _fail(f, "checkArch", f"is {_value(check_arch)}: give an architecture (amd64, arm64, ...) or null")
    if kind == STORE_PATHS and not store_paths:
        _fail(f, "storePaths", "is empty: a store-path layer holds at least one store path")
    if kind == STORE_PATHS and (copy_to_root or account is not None):
        _fail(f, "copyToRoot" if copy_to_root else "account", "is for root and snapshotter layers only")
    if kind == ROOT and store_paths:
        _fail(f, "storePaths", "is not empty: a root layer holds copy-to-root entries and the account's files only")
    if kind == ROOT and not copy_to_root and account is None:
        _fail(f, "copyToRoot", "is empty and 'account' null: the root layer would be empty")
    if kind != STORE_PATHS and perms:
        _fail(f, "perms", "applies to store-path layers only")
    if kind == SNAPSHOTTER and (compression, level, check_arch) != (SNAPSHOTTER_COMPRESSION, None, None):
        _fail(f, "compression", "of nix-snapshotter's layer is gzip at the default level, with 'checkArch' null")
    job = LayerJob(
        kind=kind,
        mtime=mtime,
        store_paths=store_paths,
        copy_to_root=copy_to_root,
        copy_to_root_mode=mode,
        account=account,
        perms=perms,
        compression=compression,
        level=level,
        machine=check_arch,
    )
    return JobLayer(out, job)


def _account(f: Fields) -> Account | None:
    a = f.child("account")
    if a is None:
        return None
    _only(a, ACCOUNT_FIELDS)
    user, group = a.string("user", required=True), a.string("group", required=True)
    uid, gid = a.integer("uid", required=True, maximum=MAX_ID), a.integer("gid", required=True, maximum=MAX_ID)
    try:
        return Account.from_arg(f"{user}:{uid}:{group}:{gid}", "account")
    except UsageError as e:  # names and the root rule; the option it names is the field here
        detail = str(e).removeprefix(f"{e.option}: ")
        raise ShapeError(f"{f.where}: '{shown(f.field('account'))}': {detail}") from None


def _perm_rules(f: Fields) -> tuple[PermSpec, ...]:
    if not isinstance(f.raw("perms"), list):
        f.fail("perms", "must be a list", f.raw("perms"))
    rules = []
    for p in f.objects("perms"):
        _only(p, PERM_FIELDS)
        pattern = p.string("pattern", required=True)
        assert pattern is not None
        if not pattern or "\n" in pattern:
            _fail(p, "pattern", f"is {_value(pattern)}: give a regular expression on one line")
        mode = p.integer("mode", maximum=MAX_MODE)
        uid, gid = p.integer("uid", maximum=MAX_ID), p.integer("gid", maximum=MAX_ID)
        if (uid is None) != (gid is None):
            _fail(p, "uid" if uid is None else "gid", "is null and the other id is not: give both ids or neither")
        if mode is None and uid is None:
            _fail(p, "mode", "is null and so are the ids: a rule sets a mode, an owner or both")
        rules.append(PermSpec(pattern, mode, uid, gid))
    return tuple(rules)


def _compression(f: Fields) -> tuple[str, int | None]:
    c = f.child("compression", required=True)
    assert c is not None
    _only(c, COMPRESSION_FIELDS)
    algorithm = c.string("algorithm", required=True)
    try:
        option_rules.check("layer.compression", algorithm)
    except option_rules.RuleError as e:
        _fail(c, "algorithm", str(e))
    assert algorithm is not None
    level = c.raw("level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
        c.fail("level", "must be an integer or null", level)
    try:
        option_rules.check_level(algorithm, level)
    except option_rules.RuleError as e:
        _fail(c, "level", str(e))
    return algorithm, level
