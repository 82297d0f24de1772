"""remote_oci_image through real Pants runs: a registry image pinned by digest as the
`base_image` of a nix_oci_image (run under podman + runc), the `source_image` of a nydus_image
and the `rootfs_image` of a unikraft_image; the pull shared through a BuildGrid remote cache;
a tag without a digest refused when the BUILD file is parsed, with the digest to paste. The
nix image packages on a shallow pull of its base (no layer blob of it downloaded) and its
publish to the base's registry mounts them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerforge.model.annotations import SHALLOW
from tests.buildgrid_support import buildgrid_server
from tests.helpers import image_parts, index_entry, read_json_blob, run, run_cli, tree_bytes, verify_blobs
from tests.kernel_support import elf_kernel
from tests.nix_support import IMAGES_NIX
from tests.pants_support import PantsRepo
from tests.pull_support import Seeded, registry_digest, seed
from tests.registry_support import Registry
from tests.runtime_support import Podman, assert_runs_as_configured

BUILD = """
remote_oci_image(name="base", image="{host}/base/multi:1@{digest}", platforms=["linux/amd64"])
nix_oci_image(
    name="on-remote",
    nix_file="images.nix",
    attr="app",
    argstrs={{"appVersion": "2.0"}},
    copy_to_root_attrs=["busyboxPkg", "app"],
    entrypoint=["/bin/hello"],
    base_image=":base",
)
nix_oci_image(
    name="as-user",
    nix_file="images.nix",
    attr="app",
    argstrs={{"appVersion": "2.0"}},
    entrypoint=["/bin/hello"],
    copy_to_root_attrs=["busyboxPkg", "app"],
    user="app",
    uid=1000,
    base_image=":base",
)
nydus_image(name="nydus", source_image=":base")
remote_oci_image(name="base-all", image="{host}/base/multi:1@{digest}")
oci_image_index(name="idx", images=[":base-all"])
files(name="kernel", sources=["kernel.elf"])
unikraft_image(
    name="uk", kernel="kernel.elf", arch="x86_64", plat="qemu", rootfs_image=":base", dependencies=[":kernel"]
)
"""
PULLS = ("Pull ",)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Seeded]]:
    root = tmp_path_factory.mktemp("remote-registry")
    reg = Registry(root / "registry").start()
    try:
        yield reg, seed(root / "seed", reg.host)
    finally:
        reg.stop()


def test_remote_image_as_base_source_and_rootfs_shared_by_a_remote_cache(
    tmp_path: Path, seeded: tuple[Registry, Seeded], podman: Podman
) -> None:
    reg, s = seeded
    other = Registry(tmp_path / "other").start()
    try:
        _package_publish_and_run(tmp_path, reg, s, other, podman)
    finally:
        other.stop()


def _package_publish_and_run(tmp_path: Path, reg: Registry, s: Seeded, other: Registry, podman: Podman) -> None:
    toml = f"""
[layerforge.registries.base]
address = "{s.host}"
repository = "run/app"
default = true

[layerforge.registries.other]
address = "{other.host}"
repository = "copy/app"
default = true
"""
    repo = PantsRepo(tmp_path / "repo", extra_toml=toml)
    repo.write("images/images.nix", IMAGES_NIX.read_text())
    elf_kernel(repo.root / "images" / "kernel.elf")
    repo.write("images/BUILD", BUILD.format(host=s.host, digest=s.index_digest))
    with buildgrid_server(tmp_path / "buildgrid") as address:
        remote = ["--remote-cache-read", "--remote-cache-write", f"--remote-store-address={address}",
                  "--remote-instance-name="]  # fmt: skip
        targets = ["images:on-remote", "images:as-user", "images:nydus", "images:uk", "images:idx"]
        first = repo.run(*remote, "package", *targets, store=tmp_path / "store-a", named=tmp_path / "named-a")
        assert first.returncode == 0, first.stderr
        # The nix image packages on the shallow pull; nydus and unikraft read layers: full pull.
        assert sorted(PantsRepo.executed(first, PULLS)) == [
            f"Pull {s.host}/base/multi:1@{s.index_digest} (shallow) for images:base",
            f"Pull {s.host}/base/multi:1@{s.index_digest} for images:base",
            f"Pull {s.host}/base/multi:1@{s.index_digest} for images:base-all",
        ]

        # An index of a remote index: flattened, the registry's manifests under their digests.
        idx = repo.root / "dist" / "images" / "idx"
        verify_blobs(idx)
        idx_index = read_json_blob(idx, index_entry(idx, "latest")["digest"])
        assert sorted((m["platform"]["architecture"], m["digest"]) for m in idx_index["manifests"]) == sorted(
            s.children.items()
        )

        layout = repo.root / "dist" / "images" / "on-remote"
        _, manifest, config = image_parts(layout, "latest")
        base_manifest = json.loads(run("skopeo", "inspect", "--raw", f"docker://{s.host}/base/multi@"
                                       f"{s.children['amd64']}", "--tls-verify=false").stdout)  # fmt: skip
        base_layers = [m["digest"] for m in base_manifest["layers"]]
        assert [m["digest"] for m in manifest["layers"][: len(base_layers)]] == base_layers
        assert "FROM_BASE=amd64" in config["config"]["Env"] and config["config"]["WorkingDir"] == "/srv"
        # The account's plan reads the base's /etc/passwd: planned on the full pull, still
        # assembled on the shallow one.
        as_user = repo.root / "dist" / "images" / "as-user"
        assert json.loads((as_user / "index.json").read_text())["annotations"] == {SHALLOW: f"{s.host}/base/multi"}
        assert image_parts(as_user, "latest")[2]["config"]["User"] == "app"
        # A shallow base: the package lists the base's layers and holds none of their blobs.
        index = json.loads((layout / "index.json").read_text())
        assert index["annotations"] == {SHALLOW: f"{s.host}/base/multi"}
        assert not any((layout / "blobs" / "sha256" / d.split(":")[1]).exists() for d in base_layers)

        nydus = repo.root / "dist" / "images" / "nydus"
        verify_blobs(nydus)
        _, nydus_manifest, _ = image_parts(nydus, "latest")
        assert len(nydus_manifest["layers"]) == len(base_manifest["layers"]) + 1  # data blobs + bootstrap

        uk = repo.root / "dist" / "images" / "uk"
        run_cli("unikraft-extract", uk, "--plat", "qemu", "--arch", "x86_64", "--out", tmp_path / "boot")
        with open(tmp_path / "boot" / "initrd", "rb") as initrd:
            listing = run("cpio", "-t", stdin=initrd).stdout.split()
        assert "etc/hello-amd64" in listing or "./etc/hello-amd64" in listing

        # A second machine (an empty local store), the registry gone: the remote cache has it all.
        built = tree_bytes(layout)
        shutil.rmtree(repo.root / "dist")
        reg.stop()
        try:
            second = repo.run(*remote, "package", "images:on-remote", store=tmp_path / "store-b",
                              named=tmp_path / "named-b")  # fmt: skip
        finally:
            reg.start()
        assert second.returncode == 0, second.stderr
        assert PantsRepo.executed(second, PULLS) == []
        assert tree_bytes(layout) == built

    # The shallow package published: to the base's registry its base layers are mounted, to
    # another they are streamed from the base's. Pulled back whole, it runs with the base's
    # files and env; the other registry's copy is complete.
    published = repo.run("publish", "images:on-remote")
    assert published.returncode == 0, published.stderr
    text = published.stdout + published.stderr
    assert f"0 skipped, {len(base_layers)} mounted;" in text, text
    assert f"0 mounted, {len(base_layers)} streamed" in text, text
    copied = tmp_path / "copied"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{other.host}/copy/app:latest", f"oci:{copied}:c")
    verify_blobs(copied)
    pinned = registry_digest(s.host, "run/app", "latest")
    full = tmp_path / "full"
    run_cli("pull", f"{s.host}/run/app@{pinned}", "--out", full, "--tag", "latest")
    assert podman.run(full, "latest").stdout.endswith("app 2.0\n")
    probe = podman.probe(full, "latest", "/bin/busybox")
    assert_runs_as_configured(probe, config)
    assert probe.env["FROM_BASE"] == "amd64"
    cat = podman.run(full, "latest", "cat", "/etc/hello-amd64", entrypoint="/bin/busybox").stdout
    assert cat == "hello from amd64\n"

    # pants run: that image pinned as a remote_oci_image, an index holding the nix image (its
    # layout completed with the base's blobs), and the nix image itself.
    build = f'remote_oci_image(name="app", image="{s.host}/run/app:latest@{pinned}")\n'
    build += 'oci_image_index(name="idx", images=["images:on-remote"], repository="run/idx")\n'
    repo.write("run/BUILD", build)
    env = podman.pants_env()
    runs = (("run:app", f"{s.host}/run/app:latest"), ("run:idx", "localhost/run/idx:latest"),
            ("images:on-remote", "localhost/on-remote:latest"))  # fmt: skip
    for target, name in runs:
        out = repo.run("run", target, env=env)
        assert (out.returncode, out.stdout) == (0, "hello from libgreet\napp 2.0\n"), out.stderr
        assert name in podman.image_names(), podman.image_names()


def test_tag_without_digest_shows_the_digest_to_paste(tmp_path: Path, seeded: tuple[Registry, Seeded]) -> None:
    _, s = seeded
    repo = PantsRepo(tmp_path / "repo")
    repo.write("bad/BUILD", f'remote_oci_image(name="x", image="{s.host}/base/multi:1")\n')
    out = repo.run("package", "bad:x")
    assert out.returncode != 0
    assert "The `image` field of bad:x has no digest" in out.stderr, out.stderr
    assert f'image="{s.host}/base/multi:1@{s.index_digest}"' in out.stderr, out.stderr
