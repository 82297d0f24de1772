"""``--format oci-archive`` and ``--image-name`` of every image kind (dir, Nix, unikraft,
Nydus, index), read back by independent tools: containerd's ``ctr images import`` (which must
name every kind by its ``io.containerd.image.name``), ``skopeo copy oci-archive:`` and
``podman load``. The archive is reproducible bit for bit, and naming an image changes only
the layout's index.json, never a manifest digest."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containerd_support import Containerd, containerd, have_containerd
from tests.helpers import index_entry, run, run_cli
from tests.kernel_support import elf_kernel
from tests.nix_support import build, nix_image
from tests.nydus_support import layered_image
from tests.runtime_support import Podman

IMAGE_NAME = "io.containerd.image.name"


@pytest.fixture(scope="module")
def ctr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    if not have_containerd():
        pytest.skip("needs containerd and ctr (Debian's containerd package) and root")
    with containerd(tmp_path_factory.mktemp("ctr")) as daemon:
        yield daemon


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def archive_index(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        f = tar.extractfile("index.json")
        assert f is not None
        return dict(json.load(f))


def dir_image(tmp_path: Path, out: Path, *args: str) -> None:
    tree = tmp_path / "tree"
    if not tree.exists():
        (tree / "etc").mkdir(parents=True)
        (tree / "etc" / "motd").write_text("hello from dir-image\n")
    run_cli("dir-image", tree, "--out", out, "--tag", "v1", *args)


def unikraft(tmp_path: Path, out: Path, *args: str) -> None:
    kernel = tmp_path / "app_qemu-x86_64"
    if not kernel.exists():
        elf_kernel(kernel)
    run_cli("unikraft-image", "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu",
            "--name", "unikraft.org/app:1.0", "--tag", "v1", "--out", out, *args)  # fmt: skip


def nydus(tmp_path: Path, out: Path, *args: str) -> None:
    src = tmp_path / "src-gzip"
    if not src.exists():
        layered_image(tmp_path)
    run_cli("nydus-image", f"{src}:v1", "--tag", "v1", "--out", out, *args)


def index(tmp_path: Path, out: Path, *args: str) -> None:
    a = tmp_path / "idx-a"
    if not a.exists():
        dir_image(tmp_path, a)
    run_cli("index", f"{a}:v1", "--tag", "v1", "--out", out, *args)


KINDS = {"dir": dir_image, "unikraft": unikraft, "nydus": nydus, "index": index}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_archive_is_reproducible_names_the_image_and_keeps_the_digest(
    tmp_path: Path, kind: str, ctr: Containerd
) -> None:
    make = KINDS[kind]
    name = f"registry.example/team/{kind}:v1"
    layout = tmp_path / "layout"
    make(tmp_path, layout)
    plain_digest = index_entry(layout, "v1")["digest"]
    assert IMAGE_NAME not in index_entry(layout, "v1").get("annotations", {})

    first, second = tmp_path / "one" / "a.tar", tmp_path / "two" / "b.tar"
    for archive in (first, second):
        archive.parent.mkdir()
        make(tmp_path, archive, "--format", "oci-archive", "--image-name", name)
    assert sha256_file(first) == sha256_file(second), "the same build gives the same archive bytes"
    assert [p.name for p in first.parent.iterdir()] == ["a.tar"], "no scratch left beside the archive"

    entries = archive_index(first)["manifests"]
    entry = next(m for m in entries if m["annotations"].get("org.opencontainers.image.ref.name") == "v1")
    assert entry["digest"] == plain_digest, "naming the image changes index.json only"
    assert entry["annotations"][IMAGE_NAME] == name

    # The layout form carries the name too.
    named = tmp_path / "named"
    make(tmp_path, named, "--image-name", name)
    assert index_entry(named, "v1")["annotations"][IMAGE_NAME] == name
    assert index_entry(named, "v1")["digest"] == plain_digest

    ctr.remove_all()
    ctr.import_archive(first)
    assert ctr.image_names() == {name: plain_digest}, "ctr names the image by io.containerd.image.name"

    # skopeo reads the archive, and what it copies out is the same image.
    copied = tmp_path / "copied"
    run("skopeo", "copy", "--all", "--preserve-digests", f"oci-archive:{first}:v1", f"oci:{copied}:v1")
    assert index_entry(copied, "v1")["digest"] == plain_digest


def test_nix_image_archive_loads_into_podman_and_ctr(
    tmp_path: Path, nix_cli_env: None, podman: Podman, ctr: Containerd
) -> None:
    app = build("app")
    name = "localhost/layerforge-test/nix-archive:v1"
    layout, archive = tmp_path / "layout", tmp_path / "nix.tar"
    nix_image("--store-path", app, "--tag", "v1", "--out", layout)
    nix_image("--store-path", app, "--tag", "v1", "--out", archive, "--format", "oci-archive", "--image-name", name)
    digest = index_entry(layout, "v1")["digest"]
    assert archive_index(archive)["manifests"][0]["digest"] == digest
    assert archive_index(archive)["manifests"][0]["annotations"][IMAGE_NAME] == name

    ctr.remove_all()
    ctr.import_archive(archive)
    assert ctr.image_names() == {name: digest}

    loaded = run(*podman.base_argv(), "load", "-i", archive)
    assert "Loaded image" in loaded.stdout
    digests = run(*podman.base_argv(), "images", "--no-trunc", "--format", "{{.Digest}}").stdout.split()
    assert digest in digests, "podman loaded the very manifest"


def test_output_names_the_archive_never_the_scratch_layout(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    archive = tmp_path / "x.tar"
    out = run_cli("dir-image", tree, "--out", archive, "--format", "oci-archive", "--tag", "v1").stdout
    digest = archive_index(archive)["manifests"][0]["digest"]
    size = archive.stat().st_size
    assert out.splitlines() == [f"{archive}:v1 {digest}", f"{archive}: oci-archive, 3 blobs, {size} bytes"]


def test_archive_into_a_directory_or_missing_parent_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    tree = tmp_path / "t"
    tree.mkdir()
    proc = run_cli("dir-image", tree, "--out", tmp_path / "d", "--format", "oci-archive", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "is a directory" in proc.stderr
    proc = run_cli("dir-image", tree, "--out", tmp_path / "no" / "x.tar", "--format", "oci-archive", check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = run_cli("dir-image", tree, "--out", tmp_path / "x", "--image-name", "Not A Name", check=False)
    assert proc.returncode == 2 and "--image-name" in proc.stderr
