"""Whiteout names as containerd and overlay read them, the same in every reader of layers
(unpacking a root filesystem, listing an image's files): ``.wh..wh..opq`` empties a
directory of the layers below, ``.wh.NAME`` removes NAME, other ``.wh..wh.`` names (aufs
metadata such as ``.wh..wh.plnk``) are ignored with what is below them, and a whiteout
naming nothing, ``.`` or ``..`` is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerforge.errors import LayerforgeError
from layerforge.layout.image_reader import list_files, read_image
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.unpack import unpack_layers
from layerforge.model.reference import LayoutRef
from tests.hostile_support import M, make_canary, tar_bytes, tree_state, write_layout

LOWER = [M("dir", "d/"), M("file", "d/a", b"a"), M("file", "d/b", b"b"), M("file", "top", b"t"), M("dir", "e/")]


def both(tmp_path: Path, upper: list[M]) -> tuple[set[str], set[str]]:
    """(paths unpacking gives, paths list_files gives) for LOWER under ``upper``."""
    image = write_layout(tmp_path / "img", [tar_bytes(LOWER), tar_bytes(upper)])
    root = tmp_path / "root"
    stored = read_image(LayoutRef(image.root, None))
    unpack_layers(OciLayout.open(image.root), list(stored.manifest.layers), stored.config.diff_ids, root)
    unpacked = {"/" + str(p.relative_to(root)) for p in root.rglob("*")}
    listed = set(list_files(read_image(LayoutRef(image.root, None))))
    return unpacked, listed


@pytest.mark.parametrize(
    ("upper", "expected"),
    [
        ([M("file", "d/.wh.a")], {"/d", "/d/b", "/top", "/e"}),
        ([M("file", ".wh.top")], {"/d", "/d/a", "/d/b", "/e"}),
        ([M("file", "d/.wh..wh..opq"), M("file", "d/new", b"n")], {"/d", "/d/new", "/top", "/e"}),
        ([M("file", ".wh..wh..opq"), M("file", "only", b"o")], {"/only"}),
        # aufs metadata: ignored, whole subtrees included, and nothing is removed
        ([M("file", ".wh..wh.plnk"), M("dir", ".wh..wh.plnk/"), M("file", ".wh..wh.plnk/123.456", b"x")],
         {"/d", "/d/a", "/d/b", "/top", "/e"}),
        ([M("file", "d/.wh..wh.aufs")], {"/d", "/d/a", "/d/b", "/top", "/e"}),
        # a whiteout of something absent, or below a file, removes nothing
        ([M("file", "d/.wh.nothing"), M("file", "top/.wh.x")], {"/d", "/d/a", "/d/b", "/top", "/e"}),
    ],
)  # fmt: skip
def test_whiteouts_are_applied_alike_by_every_reader(tmp_path: Path, upper: list[M], expected: set[str]) -> None:
    unpacked, listed = both(tmp_path, upper)
    assert unpacked == expected
    assert listed == expected


@pytest.mark.parametrize("name", [".wh.", "d/.wh.", ".wh..", "d/.wh..", ".wh...", "e/.wh..."])
def test_whiteouts_naming_nothing_dot_or_dotdot_are_errors(tmp_path: Path, name: str) -> None:
    canary = make_canary(tmp_path / "canary")
    before = tree_state(canary)
    with pytest.raises(LayerforgeError, match="names no file"):
        both(tmp_path, [M("file", name)])
    assert tree_state(canary) == before
    image = write_layout(tmp_path / "img2", [tar_bytes(LOWER), tar_bytes([M("file", name)])])
    with pytest.raises(LayerforgeError, match="names no file"):
        list_files(read_image(LayoutRef(image.root, None)))


def test_members_inside_a_whiteout_are_errors(tmp_path: Path) -> None:
    with pytest.raises(LayerforgeError, match="inside a whiteout"):
        both(tmp_path, [M("file", "d/.wh.a/x")])


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/../x"])
def test_names_climbing_out_are_errors(tmp_path: Path, name: str) -> None:
    with pytest.raises(LayerforgeError, match="escapes the root"):
        both(tmp_path, [M("file", name)])


def test_dot_and_absolute_names_are_relative_to_the_root(tmp_path: Path) -> None:
    unpacked, listed = both(tmp_path, [M("file", "/abs", b"1"), M("file", "./dot", b"2"), M("file", ".hidden", b"3")])
    assert {"/abs", "/dot", "/.hidden"} <= unpacked
    assert {"/abs", "/dot", "/.hidden"} <= listed
