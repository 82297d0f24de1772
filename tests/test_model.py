"""The image model: canonical JSON, references, descriptors, index updates, epochs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from layerforge.errors import LayerforgeError
from layerforge.images.nix.store_path import parse_store_path
from layerforge.images.unikraft.package_name import parse_package_name
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import validate_digest
from layerforge.model.epoch import rfc3339, source_date_epoch
from layerforge.model.image_config import ImageConfig, RuntimeConfig
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest
from layerforge.model.platform import LINUX_ARCHES, NIX_SYSTEMS, Platform, same_platform
from layerforge.model.reference import parse_layout_ref, validate_ref

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_canonical_json_is_order_independent_and_compact() -> None:
    a = canonical_json({"b": 1, "a": {"y": "é", "x": [1, 2]}})
    b = canonical_json({"a": {"x": [1, 2], "y": "é"}, "b": 1})
    assert a == b == '{"a":{"x":[1,2],"y":"é"},"b":1}'.encode()
    with pytest.raises(TypeError):
        canonical_json({"f": 1.5})


@pytest.mark.parametrize("ref", ["latest", "v1.2.3", "example.com/app:1.0", "a--b", "a_b".replace("_", "-"), "x@y"])
def test_valid_refs(ref: str) -> None:
    assert validate_ref(ref) == ref


@pytest.mark.parametrize("ref", ["", "bad tag", "-lead", "trail-", "a//b", "é"])
def test_invalid_refs(ref: str) -> None:
    with pytest.raises(LayerforgeError, match="--tag"):
        validate_ref(ref)


def test_layout_ref_parsing(tmp_path: Path) -> None:
    layout = tmp_path / "lay:out"
    layout.mkdir()
    (layout / "oci-layout").write_text("{}")
    assert parse_layout_ref(str(layout)).ref is None
    r = parse_layout_ref(f"{layout}:example.com/app:1.0")
    assert (r.path, r.ref) == (layout, "example.com/app:1.0")
    r = parse_layout_ref(str(tmp_path / "missing:tag"))
    assert (r.path, r.ref) == (tmp_path / "missing", "tag")
    assert parse_layout_ref("plain").ref is None


def test_index_with_ref_replaces_and_sorts() -> None:
    d1 = Descriptor("application/vnd.oci.image.manifest.v1+json", D1, 10)
    d2 = Descriptor("application/vnd.oci.image.manifest.v1+json", D2, 20)
    idx = Index().with_ref(d1, "zeta").with_ref(d1, "alpha").with_ref(d2, "zeta")
    assert idx.refs() == ["alpha", "zeta"]
    found = idx.find("zeta")
    assert found is not None and found.digest == D2
    assert Index.from_json(idx.to_json()) == idx


def test_manifest_and_config_round_trip() -> None:
    cfg = ImageConfig(
        platform=Platform("arm64", "linux", variant="v8"),
        created="1970-01-01T00:00:01Z",
        diff_ids=(D1,),
        config=RuntimeConfig(entrypoint=("/bin/sh",), env=("A=1",), labels={"k": "v"}, exposed_ports=("80/tcp",)),
    )
    assert ImageConfig.from_json(cfg.to_json()) == cfg
    m = Manifest(config=Descriptor("application/vnd.oci.image.config.v1+json", D2, 5), layers=(Descriptor("x", D1, 3),))
    assert Manifest.from_json(m.to_json()) == m


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"mediaType": "x", "size": 1}, "missing 'digest'"),
        ({"mediaType": "x", "digest": "md5:abc", "size": 1}, "not a sha256 digest"),
        ({"mediaType": "x", "digest": D1, "size": -1}, "invalid"),
    ],
)
def test_bad_descriptors(obj: dict[str, object], message: str) -> None:
    with pytest.raises(LayerforgeError, match=message):
        Descriptor.from_json(obj)


def test_source_date_epoch() -> None:
    assert source_date_epoch({}) == 1
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    with pytest.raises(LayerforgeError, match="SOURCE_DATE_EPOCH"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "check",
    [
        lambda: validate_ref("app:1.0\n"),
        lambda: validate_digest("sha256:" + "0" * 64 + "\n"),
        lambda: parse_store_path("/nix/store/" + "a" * 32 + "-x\n"),
        lambda: parse_package_name("unikraft.org/app:1.0\n", "latest"),
    ],
    ids=["ref", "digest", "store-path", "kraftkit-name"],
)
def test_a_trailing_newline_is_not_part_of_any_name(check: object) -> None:
    # `$` in a Python regex also matches before a final newline: every grammar must refuse it.
    with pytest.raises(LayerforgeError):
        check()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("arm64", None), ("arm64", "v8"), True),  # umoci and many configs omit arm64's variant
        (("arm", None), ("arm", "v7"), True),
        (("arm", "v6"), ("arm", "v7"), False),
        (("arm", "v6"), ("arm", None), False),
        (("amd64", None), ("amd64", None), True),
        (("amd64", None), ("arm64", "v8"), False),
    ],
)
def test_platforms_compare_with_conventional_variants(
    a: tuple[str, str | None], b: tuple[str, str | None], same: bool
) -> None:
    pa = Platform(architecture=a[0], os="linux", variant=a[1])
    pb = Platform(architecture=b[0], os="linux", variant=b[1])
    assert same_platform(pa, pb) is same and same_platform(pb, pa) is same


def _assigned(nodes: list[ast.stmt], name: str) -> object:
    """The literal value a statement among ``nodes`` assigns to ``name``."""
    for node in nodes:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no assignment to {name}")


def test_the_pants_fields_know_the_tools_systems_and_architectures() -> None:
    """The plugin does not import the tool, so nix_target.py restates the tool's tables of Nix
    systems and image architectures: read from its source, they must be the tool's."""
    source = Path(__file__).parent.parent / "pants-plugins" / "layerforge_pants" / "nix" / "target.py"
    tree = ast.parse(source.read_text())
    arch_field = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ImageArchField")
    assert _assigned(tree.body, "NIX_SYSTEMS") == NIX_SYSTEMS
    assert _assigned(arch_field.body, "valid_choices") == tuple(LINUX_ARCHES)
