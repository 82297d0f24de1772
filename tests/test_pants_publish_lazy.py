"""`pants publish` without the bytes: machine A packages with a remote cache (a real BuildGrid)
and writes it; machine B, with an empty local store, reads it without fetching the outputs of
cache hits (`--cache-content-behavior=validate`, Pants 2.17's name for it) and publishes to a
real docker-registry that already holds every layer of the image but one. B reads from the
remote cache only that layer (the tool and the layout's documents are already local after a
dry-run publish), counted on the wire by a relay in front of BuildGrid (Pants 2.17 has no
counter of it); the registry then serves the whole image. To an empty registry the same
publish sends everything, from another empty store."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.buildgrid_support import buildgrid_server
from tests.helpers import blob_path, image_parts, run, verify_blobs
from tests.pants_support import PantsRepo
from tests.registry_support import Registry, upload_all_but
from tests.tcp_meter import TcpMeter

# Three layers of about the same size (a static busybox and two copies of it, each made
# different), plus the app's: per-path layering gives each store path its own layer.
IMAGES = """
{ busybox ? "/bin/busybox" }:
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    args = [ "sh" "-c" script ];
    PATH = "/bin:/usr/bin";
  };
in rec {
  busyboxPkg = mk "busybox-1.35" ''
    ${busybox} mkdir -p $out/bin
    ${busybox} cp ${busybox} $out/bin/busybox
  '';
  dataA = mk "data-a-1" ''
    ${busybox} mkdir -p $out/share
    ${busybox} cp ${busybox} $out/share/a.bin
    ${busybox} echo a >> $out/share/a.bin
  '';
  dataB = mk "data-b-1" ''
    ${busybox} mkdir -p $out/share
    ${busybox} cp ${busybox} $out/share/b.bin
    ${busybox} echo b >> $out/share/b.bin
  '';
  app = mk "lazy-app-1.0" ''
    ${busybox} mkdir -p $out/bin
    ${busybox} echo "#!${busyboxPkg}/bin/busybox sh" > $out/bin/hello
    ${busybox} echo "${busyboxPkg}/bin/busybox ls ${dataA}/share ${dataB}/share" >> $out/bin/hello
    ${busybox} chmod 555 $out/bin/hello
  '';
}
"""
BUILD = """
nix_oci_image(
    name="app",
    nix_file="images.nix",
    attr="app",
    layering="per-path",
    repository="team/app",
    image_tags=["1.0"],
    sbom=True,
)
"""
#: What B may read besides the missing layer: cache lookups, directory trees, gRPC framing
#: (the tool and the documents are already local after the dry run).
SLACK = 64 << 10


@pytest.fixture
def buildgrid(tmp_path: Path) -> Iterator[TcpMeter]:
    """BuildGrid behind a relay counting what clients read from it."""
    with buildgrid_server(tmp_path / "buildgrid") as address:
        meter = TcpMeter(address.removeprefix("grpc://")).start()
        try:
            yield meter
        finally:
            meter.stop()


def registries(host: str) -> str:
    return "--layerforge-registries=" + repr({"target": {"address": host, "default": True}})


def test_publish_downloads_only_the_layer_the_registry_lacks(tmp_path: Path, buildgrid: TcpMeter) -> None:
    held_registry = Registry(tmp_path / "held").start()
    empty_registry = Registry(tmp_path / "empty").start()
    try:
        _publish_from_a_second_machine(tmp_path, buildgrid, held_registry, empty_registry)
    finally:
        held_registry.stop()
        empty_registry.stop()


def _publish_from_a_second_machine(tmp_path: Path, buildgrid: TcpMeter, held: Registry, empty: Registry) -> None:
    repo = PantsRepo(tmp_path / "repo")
    repo.write("images/images.nix", IMAGES)
    repo.write("images/BUILD", BUILD)
    remote = [f"--remote-store-address=grpc://{buildgrid.address}", "--remote-instance-name=", "--remote-cache-read"]

    # Machine A packages and fills the remote cache.
    a = repo.run(*remote, "--remote-cache-write", "package", "images:app", store=tmp_path / "store-a",
                 named=tmp_path / "named-a")  # fmt: skip
    assert a.returncode == 0, a.stderr[-4000:]
    layout = repo.root / "dist" / "images" / "app"
    entry, manifest, _ = image_parts(layout, "1.0")
    layers = sorted(((d["size"], d["digest"]) for d in manifest["layers"]), reverse=True)
    assert len(layers) >= 4 and layers[2][0] > 4 * SLACK, layers
    # The registry holds every layer but the second biggest (another as big is held).
    missing_size, missing = layers[1]
    samples = _samples(layout, [layer for layer in layers if layer[0] > SLACK])
    upload_all_but(held.host, "team/app", layout, layers, missing)
    shutil.rmtree(repo.root / "dist")

    # Machine B: an empty store, the remote cache read lazily. A dry-run publish fetches the
    # tool and the layout's documents, and no layer.
    lazy = [*remote, "--no-remote-cache-write", "--cache-content-behavior=validate"]
    store_b = {"store": tmp_path / "store-b", "named": tmp_path / "named-b"}
    buildgrid.reset()
    dry = repo.run(*lazy, registries(held.host), "--layerforge-publish-dry-run", "publish", "images:app", **store_b)
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert PantsRepo.executed(dry, ("Plan ", "Build layer", "Assemble ")) == [], "the remote cache answers"
    assert "dry run: would push 2 blobs" in dry.stdout + dry.stderr, dry.stdout + dry.stderr  # the layer, the config
    assert not _holds_layers(tmp_path / "store-b", samples), "no layer is downloaded for a dry run"

    buildgrid.reset()
    published = repo.run(*lazy, registries(held.host), "publish", "images:app", **store_b)
    assert published.returncode == 0, published.stderr[-4000:]
    read = buildgrid.down
    assert missing_size <= read <= missing_size + SLACK, (read, missing_size)
    text = published.stdout + published.stderr
    # pushed: the layer, config, the SPDX and CycloneDX SBOMs and the provenance, and their (one,
    # empty) config; skipped: the 3 layers held, and that config for the second and third referrer
    assert "blobs: 6 pushed" in text and "5 skipped" in text, text[-3000:]
    assert f"{held.host}/team/app:1.0 published" in text, text[-3000:]
    _served_whole(tmp_path / "back-held", f"{held.host}/team/app:1.0", entry["digest"], manifest)

    # A registry that lacks everything gets everything, from another empty store.
    full = repo.run(*lazy, registries(empty.host), "publish", "images:app", store=tmp_path / "store-c",
                    named=tmp_path / "named-c")  # fmt: skip
    assert full.returncode == 0, full.stderr[-4000:]
    assert _holds_layers(tmp_path / "store-c", samples), "every layer came from the remote cache"
    _served_whole(tmp_path / "back-empty", f"{empty.host}/team/app:1.0", entry["digest"], manifest)


def _served_whole(back: Path, ref: str, digest: str, manifest: dict[str, object]) -> None:
    inspected = json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{ref}").stdout)
    assert inspected["Digest"] == digest
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{back}:x")
    assert verify_blobs(back) >= len(manifest["layers"])  # type: ignore[arg-type]
    assert image_parts(back, "x")[1]["layers"] == manifest["layers"]


def _samples(layout: Path, layers: list[tuple[int, str]]) -> list[bytes]:
    """256 bytes from the middle of each layer blob: compressed, so found nowhere else."""
    out = []
    for size, digest in layers:
        with open(blob_path(layout, digest), "rb") as f:
            f.seek(size // 2)
            out.append(f.read(256))
    return out


def _holds_layers(store: Path, samples: list[bytes]) -> bool:
    """Whether any layer's bytes are in the Pants store (LMDB keeps values verbatim)."""
    for path in store.rglob("*"):
        if path.is_file() and path.stat().st_size < (512 << 20):
            data = path.read_bytes()
            if any(sample in data for sample in samples):
                return True
    return False
