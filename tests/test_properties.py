"""Property-based tests of every Python parser of untrusted input (hypothesis, a bounded
number of examples so that they take seconds):

* the layer unpacker, fed random stacks of tar members (symlinks in and out of the root,
  whiteouts, opaque markers, hard links, directories, ``..`` and absolute names): nothing
  outside the root changes, and the only exception is a LayerforgeError;
* the manifest, index, config, descriptor and platform readers, fed random JSON (and random
  bytes): a model object or a LayerforgeError, never anything else.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerforge.errors import LayerforgeError
from layerforge.layout.image_reader import list_files, read_image
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.unpack import unpack_layers
from layerforge.model.descriptor import Descriptor
from layerforge.model.image_config import ImageConfig
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest
from layerforge.model.platform import Platform
from layerforge.model.reference import LayoutRef
from layerforge.trust.json_shape import load_json
from tests.hostile_support import M, make_canary, shares_inode_with, tar_bytes, tree_state, write_layout

#: Bounded runs (a few seconds each in scripts/test); no example database in the work tree.
FAST = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(FAST, max_examples=200)

# -- the layer unpacker --------------------------------------------------------------------------

CANARY_MARK = "@CANARY@"
PARTS = ["a", "b", "x", "..", ".", ".wh.a", ".wh.x", ".wh..wh..opq", ".wh..wh.plnk", ".wh.", "keep.txt", "sub"]


@st.composite
def member_names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(PARTS), min_size=1, max_size=4))
    lead = draw(st.sampled_from(["", "/", "./"]))
    return lead + "/".join(parts)


@st.composite
def members(draw: st.DrawFn) -> M:
    kind = draw(st.sampled_from(["dir", "file", "symlink", "symlink", "hardlink", "fifo"]))
    name = draw(member_names())
    mode = draw(st.sampled_from([0o755, 0o700, 0o777, 0o4755, 0o000]))
    uid = draw(st.sampled_from([0, 7, 65534]))
    if kind == "symlink":
        target = draw(st.sampled_from([CANARY_MARK, CANARY_MARK + "/keep.txt", CANARY_MARK + "/sub", "../../..",
                                       "a", "/", "x/../..", "sub"]))  # fmt: skip
        return M("symlink", name, target=target, mode=mode, uid=uid)
    if kind == "hardlink":
        return M("hardlink", name, target=draw(member_names()))
    if kind == "file":
        return M("file", name, draw(st.binary(max_size=64)), mode=mode, uid=uid)
    return M(kind, name, mode=mode, uid=uid)


def _resolve(m: M, canary: Path) -> M:
    return M(m.kind, m.name, m.data, m.target.replace(CANARY_MARK, str(canary)), m.mode, m.uid, m.gid)


@FAST
@given(st.lists(st.lists(members(), max_size=8), min_size=1, max_size=3))
def test_unpacking_random_layers_never_touches_outside(layers: list[list[M]]) -> None:
    work = Path(tempfile.mkdtemp(prefix="lf-prop-"))
    try:
        canary = make_canary(work / "canary")
        before = tree_state(canary)
        image = write_layout(work / "img", [tar_bytes([_resolve(m, canary) for m in ms]) for ms in layers])
        root = work / "out" / "root"
        with contextlib.suppress(LayerforgeError):
            stored = read_image(LayoutRef(image.root, None))
            unpack_layers(OciLayout.open(image.root), list(stored.manifest.layers), stored.config.diff_ids, root)
            list_files(stored)
        assert tree_state(canary) == before
        assert not shares_inode_with(work / "out", canary)
        assert sorted(p.name for p in work.iterdir()) == ["canary", "img", "out"], "no scratch left beside"
    finally:
        _force_remove(work)


def _force_remove(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path)


# -- the JSON readers ----------------------------------------------------------------------------

JSON_LEAF = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=12)
JSON = st.recursive(JSON_LEAF, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=20)  # fmt: skip
DIGEST = "sha256:" + "a" * 64
KEYS = ["schemaVersion", "mediaType", "config", "layers", "manifests", "annotations", "subject", "artifactType",
        "digest", "size", "platform", "architecture", "os", "os.features", "os.version", "variant", "rootfs",
        "diff_ids", "history", "Env", "Entrypoint", "Cmd", "User", "Labels", "ExposedPorts", "Volumes",
        "StopSignal", "WorkingDir", "created", "urls"]  # fmt: skip
VALUES = JSON | st.sampled_from([2, DIGEST, "application/vnd.oci.image.manifest.v1+json", "linux", "amd64"])


@st.composite
def oci_like(draw: st.DrawFn, depth: int = 0) -> Any:
    """Objects with OCI field names and random (often right, often wrong) values."""
    if depth > 2 or draw(st.integers(0, 3)) == 0:
        return draw(VALUES)
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=8, unique=True))
    obj: dict[str, Any] = {}
    for k in keys:
        obj[k] = draw(st.one_of(VALUES, oci_like(depth + 1), st.lists(oci_like(depth + 1), max_size=2)))
    return obj


READERS = [Manifest.from_json, Index.from_json, ImageConfig.from_json, Descriptor.from_json, Platform.from_json]

DESC = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar",
    "digest": DIGEST,
    "size": 3,
    "annotations": {"a": "b"},
    "platform": {"architecture": "amd64", "os": "linux", "os.features": ["x"]},
}
TEMPLATES: list[Any] = [
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": DESC, "layers": [DESC],
     "annotations": {"k": "v"}, "subject": DESC},
    {"schemaVersion": 2, "manifests": [DESC, DESC], "annotations": {"k": "v"}},
    {"architecture": "amd64", "os": "linux", "os.features": ["f"], "created": "now",
     "config": {"Env": ["A=1"], "Entrypoint": ["/a"], "Cmd": ["b"], "User": "u", "Labels": {"l": "v"},
                "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/v": {}}, "StopSignal": "TERM", "WorkingDir": "/"},
     "rootfs": {"type": "layers", "diff_ids": [DIGEST]}, "history": [{"created": "x", "empty_layer": True}]},
    DESC,
]  # fmt: skip


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document (object keys and list indexes), the document itself first."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _replaced(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(obj) if isinstance(obj, dict) else list(obj)
    copy[path[0]] = _replaced(obj[path[0]], path[1:], value)
    return copy


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid document with one to three places replaced by random values (wrong types,
    control characters, huge numbers, nesting), or an OCI-shaped random object."""
    if draw(st.integers(0, 4)) == 0:
        return draw(oci_like())
    doc = draw(st.sampled_from(TEMPLATES))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        value = draw(VALUES | st.sampled_from(["a\nb", "\x1b[2J", True, 1 << 70, -1]) | oci_like(2))
        doc = _replaced(doc, path, value)
    return doc


@MANY
@given(mutated())
def test_json_readers_give_a_model_or_a_layerforge_error(obj: Any) -> None:
    for read in READERS:
        try:
            read(obj)
        except LayerforgeError as e:
            assert "\n" not in str(e)


@MANY
@given(st.binary(max_size=200) | JSON.map(lambda o: json.dumps(o).encode()))
def test_document_parsing_gives_json_or_a_layerforge_error(data: bytes) -> None:
    try:
        obj = load_json(data, "doc")
    except LayerforgeError:
        return
    for read in READERS:
        with contextlib.suppress(LayerforgeError):
            read(obj)
