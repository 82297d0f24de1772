"""`layerforge nix-image` with real Nix: images that run, reproducible layers, reuse,
base images, SBOMs, nix-snapshotter images, runtime bundles, and clear failures."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.helpers import (
    blob_path,
    image_parts,
    run,
    run_cli,
    snapshot,
    tree_bytes,
    validate_runtime_spec,
    validate_schema,
    verify_blobs,
)
from tests.nix_support import IMAGES_NIX, build, closure, layer_job, nix_env, nix_image, store_layer
from tests.runtime_support import Podman, assert_runs_as_configured


def assert_runs(podman: Podman, layout: Path, ref: str = "latest", *, output: str | None = None, **ids: int) -> None:
    """The image runs under podman + runc: its own entrypoint prints ``output`` (if given), and a
    probe sees the config's user, working directory and environment."""
    _, _, config = image_parts(layout, ref)
    if output is not None:
        assert podman.run(layout, ref).stdout == output
    assert_runs_as_configured(podman.probe(layout, ref, f"{build('busyboxPkg')}/bin/busybox"), config, **ids)


pytestmark = pytest.mark.usefixtures("nix_cli_env")


def layer_paths(layout: Path, digest: str) -> list[str]:
    """Top-level store paths a layer holds."""
    with tarfile.open(blob_path(layout, digest)) as tar:
        names = {m.name.rstrip("/") for m in tar.getmembers()}
    return sorted({"/" + "/".join(n.split("/")[:3]) for n in names if n.count("/") >= 2 and n.startswith("nix/store/")})


def unpack(layout: Path, ref: str, dest: Path) -> Path:
    run("umoci", "unpack", "--image", f"{layout}:{ref}", dest)
    return dest / "rootfs"


def test_image_runs_with_chroot_unshare_and_podman(tmp_path: Path, podman: Podman) -> None:
    app, busybox = build("app"), build("busyboxPkg")
    out = tmp_path / "img"
    nix_image(
        "--nix-file", IMAGES_NIX, "-A", "app", "--copy-to-root", busybox, "--out", out,
        "--entrypoint", f"{app}/bin/hello", "--env", "PATH=/bin",
    )  # fmt: skip
    rootfs = unpack(out, "latest", tmp_path / "bundle")
    _, _, config = image_parts(out)
    argv = config["config"]["Entrypoint"]
    assert run("chroot", rootfs, *argv).stdout == "hello from libgreet\napp 1.0\n"
    assert run("unshare", "--mount", "--pid", "--fork", f"--root={rootfs}", *argv).stdout.endswith("app 1.0\n")
    # copy-to-root: /bin holds symlinks into the store
    assert os.readlink(rootfs / "bin" / "sh") == f"{busybox}/bin/sh"
    assert run("chroot", rootfs, "/bin/sh", "-c", "echo via root layer").stdout == "via root layer\n"
    assert_runs(podman, out, output="hello from libgreet\napp 1.0\n")


def test_reference_graph_layers_and_order(tmp_path: Path, podman: Podman) -> None:
    app = build("app")
    out = tmp_path / "img"
    nix_image("--store-path", app, "--out", out, "--layering", "per-path")
    _, manifest, config = image_parts(out)
    layers = [layer_paths(out, layer["digest"]) for layer in manifest["layers"]]
    expected = closure(app)
    assert all(len(paths) == 1 for paths in layers)
    flat = [p for paths in layers for p in paths]
    assert sorted(flat) == sorted(expected) and len(flat) == len(set(flat))
    seen: set[str] = set()
    for paths in layers:
        seen |= set(paths)
        for p in paths:
            assert closure(p) <= seen, f"{p} needs a path above it"
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"]) == 3
    assert len(config["history"]) == 3
    verify_blobs(out)
    assert podman.run(out, "latest", entrypoint=f"{app}/bin/hello").stdout.endswith("app 1.0\n")
    assert_runs(podman, out)


def test_popularity_merges_within_max_layers(tmp_path: Path, podman: Podman) -> None:
    app = build("app")
    out = tmp_path / "img"
    nix_image("--store-path", app, "--out", out, "--max-layers", "2")
    _, manifest, _ = image_parts(out)
    layers = [layer_paths(out, layer["digest"]) for layer in manifest["layers"]]
    assert len(layers) == 2
    assert sorted(p for ls in layers for p in ls) == sorted(closure(app))
    assert layers[0] == [build("busyboxPkg")], "the biggest shared dependency keeps its own layer at the bottom"
    assert podman.run(out, "latest", entrypoint=f"{app}/bin/hello").stdout.endswith("app 1.0\n")
    assert_runs(podman, out)


def test_reproducible_across_runs_dirs_and_argument_order(tmp_path: Path, podman: Podman) -> None:
    app, etc = build("app"), build("etc")
    digests = set()
    for i, paths in enumerate([[app, etc], [etc, app], [app, etc]]):
        args = [a for p in paths for a in ("--store-path", p)]
        out = nix_image(*args, "--out", tmp_path / f"o{i}" / "nested", "--no-cache", "--max-layers", "3").stdout
        digests.add(out.split()[-1])
    assert len(digests) == 1
    for i in range(3):  # the same image each time, but each layout is run
        assert_runs(podman, tmp_path / f"o{i}" / "nested")


def test_changing_the_app_rebuilds_only_its_layer(tmp_path: Path, podman: Podman) -> None:
    out1, out2 = tmp_path / "v1", tmp_path / "v2"
    r1 = nix_image("--nix-file", IMAGES_NIX, "-A", "app", "--argstr", "appVersion", "1.0", "--out", out1)
    r2 = nix_image("--nix-file", IMAGES_NIX, "-A", "app", "--argstr", "appVersion", "2.0", "--out", out2)
    assert "3 reused" not in r1.stderr and "0 reused, 3 built" in r1.stderr
    assert "2 reused, 1 built" in r2.stderr, r2.stderr
    l1 = [layer["digest"] for layer in image_parts(out1)[1]["layers"]]
    l2 = [layer["digest"] for layer in image_parts(out2)[1]["layers"]]
    assert l1[:2] == l2[:2] and l1[2] != l2[2]
    verify_blobs(out2)
    # Same inputs again: everything from the cache, same image.
    r3 = nix_image("--nix-file", IMAGES_NIX, "-A", "app", "--argstr", "appVersion", "1.0", "--out", tmp_path / "v1b")
    assert "3 reused, 0 built" in r3.stderr
    assert r3.stdout.split()[-1] == r1.stdout.split()[-1]
    for out, version in ((out1, "1.0"), (out2, "2.0"), (tmp_path / "v1b", "1.0")):
        hello = f"{build('app', appVersion=version)}/bin/hello"
        assert podman.run(out, "latest", entrypoint=hello).stdout.endswith(f"app {version}\n")
        assert_runs(podman, out)


def test_layer_group_is_one_shared_layer(tmp_path: Path, podman: Podman) -> None:
    app, busybox, lib = build("app"), build("busyboxPkg"), build("libgreet")
    a = nix_image("--store-path", app, "--out", tmp_path / "a", "--layer-group", lib, busybox).stdout
    b = nix_image("--store-path", app, "--out", tmp_path / "b", "--layer-group", busybox, lib).stdout
    # the form Pants passes: one argument, the paths joined by commas
    c = nix_image(f"--store-path={app}", f"--out={tmp_path / 'c'}", f"--layer-group={lib},{busybox}").stdout
    assert a.split()[-1] == b.split()[-1] == c.split()[-1]
    _, manifest, _ = image_parts(tmp_path / "a")
    layers = [layer_paths(tmp_path / "a", layer["digest"]) for layer in manifest["layers"]]
    assert sorted([busybox, lib]) in layers and [app] in layers
    assert podman.run(tmp_path / "a", "latest", entrypoint=f"{app}/bin/hello").stdout.endswith("app 1.0\n")
    assert_runs(podman, tmp_path / "b")


def test_perms_rules(tmp_path: Path, podman: Podman) -> None:
    app = build("app")
    out = tmp_path / "img"
    nix_image("--store-path", app, "--out", out, "--perms", f"{app}/bin/hello=0750:1000:100")
    _, manifest, _ = image_parts(out)
    found = []
    for layer in manifest["layers"]:
        with tarfile.open(blob_path(out, layer["digest"])) as tar:
            found += [(m.mode, m.uid, m.gid) for m in tar.getmembers() if m.name == f"{app}/bin/hello".lstrip("/")]
    assert found == [(0o750, 1000, 100)]
    hello = f"{app}/bin/hello"
    assert podman.run(out, "latest", entrypoint=hello, user="1000:100").stdout.endswith("app 1.0\n")
    denied = podman.run(out, "latest", entrypoint=hello, user="1001:1001", check=False)
    assert denied.returncode != 0 and "permission denied" in denied.stderr.lower(), "0750 keeps others out"


def test_from_image_prepends_layers_and_merges_config(tmp_path: Path, podman: Podman) -> None:
    base_root = tmp_path / "base-root"
    (base_root / "etc").mkdir(parents=True)
    (base_root / "etc" / "os-release").write_text("ID=base\n")
    base = tmp_path / "base"
    run_cli(
        "dir-image", base_root, "--out", base, "--tag", "v1", "--env", "LANG=C.UTF-8", "--env", "PATH=/usr/bin",
        "--label", "team=platform", "--cmd", "/bin/sh", "--workdir", "/srv",
    )  # fmt: skip
    app, busybox = build("app"), build("busyboxPkg")
    out = tmp_path / "img"
    nix_image(
        "--store-path", app, "--copy-to-root", busybox, "--from-image", f"{base}:v1", "--out", out,
        "--env", "PATH=/bin", "--label", "app=hello", "--entrypoint", f"{app}/bin/hello",
    )  # fmt: skip
    _, base_manifest, base_config = image_parts(base, "v1")
    _, manifest, config = image_parts(out)
    assert manifest["layers"][0] == base_manifest["layers"][0]
    assert config["rootfs"]["diff_ids"][0] == base_config["rootfs"]["diff_ids"][0]
    assert len(manifest["layers"]) == 1 + 3 + 1
    assert config["config"]["Env"] == ["LANG=C.UTF-8", "PATH=/bin"]
    assert config["config"]["Labels"] == {"team": "platform", "app": "hello"}
    assert config["config"]["WorkingDir"] == "/srv"
    assert "Cmd" not in config["config"], "a new entrypoint drops the base's default command"
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == image_parts(base, "v1")[0]["digest"]
    rootfs = unpack(out, "latest", tmp_path / "bundle")
    assert (rootfs / "etc" / "os-release").read_text() == "ID=base\n"
    assert run("chroot", rootfs, f"{app}/bin/hello").stdout.endswith("app 1.0\n")
    verify_blobs(out)
    assert_runs(podman, out, output="hello from libgreet\napp 1.0\n")


def test_entrypoint_found_through_base_image(tmp_path: Path, podman: Podman) -> None:
    base_root = tmp_path / "base-root"
    (base_root / "usr" / "bin").mkdir(parents=True)
    (base_root / "bin").mkdir()
    shutil.copy("/bin/busybox", base_root / "bin" / "busybox")
    (base_root / "bin" / "sh").symlink_to("busybox")
    (base_root / "usr" / "bin" / "tool").write_text("#!/bin/sh\necho tool ran\n")
    (base_root / "usr" / "bin" / "tool").chmod(0o755)
    base = tmp_path / "base"
    run_cli("dir-image", base_root, "--out", base)
    out = tmp_path / "img"
    nix_image("--store-path", build("libgreet"), "--from-image", base, "--out", out, "--entrypoint", "tool")
    assert podman.run(out, "latest").stdout == "tool ran\n"
    _, _, config = image_parts(out)
    assert_runs_as_configured(podman.probe(out, "latest", "/bin/busybox"), config)
    bad = nix_image(
        "--store-path", build("libgreet"), "--from-image", base, "--out", out, "--entrypoint", "nope", check=False
    )
    assert bad.returncode == 2 and "'nope' does not exist in the image on the image's PATH" in bad.stderr


def test_sbom_is_valid_spdx_and_refers_to_the_image(tmp_path: Path, podman: Podman) -> None:
    app = build("app")
    out = tmp_path / "img"
    res = nix_image("--store-path", app, "--out", out, "--sbom")
    assert_runs(podman, out)
    sbom_digest = res.stderr.split("sbom ")[1].split()[0]
    entry, _, _ = image_parts(out)
    artifact = json.loads(blob_path(out, sbom_digest).read_bytes())
    assert artifact["artifactType"] == "application/spdx+json"
    assert artifact["subject"]["digest"] == entry["digest"]
    validate_schema(artifact, "image-manifest-schema.json")
    doc_path = tmp_path / "sbom.spdx.json"
    doc_path.write_bytes(blob_path(out, artifact["layers"][0]["digest"]).read_bytes())
    document = parse_file(str(doc_path))
    assert validate_full_spdx_document(document) == []
    doc = json.loads(doc_path.read_bytes())
    by_file = {p["packageFileName"]: p for p in doc["packages"]}
    assert set(by_file) == closure(app)
    info = json.loads(
        run("nix", "--extra-experimental-features", "nix-command", "path-info", "--json", app, env=nix_env()).stdout
    )
    nar_hash = info[0]["narHash"] if isinstance(info, list) else info[app]["narHash"]
    expected_hex = run(
        "nix", "--extra-experimental-features", "nix-command", "hash", "to-base16", nar_hash, env=nix_env()
    ).stdout.strip()
    assert by_file[app]["checksums"] == [{"algorithm": "SHA256", "checksumValue": expected_hex}]
    assert by_file[app]["versionInfo"] == "1.0" and by_file[app]["name"] == "hello-app"
    assert {"spdxElementId": by_file[app]["SPDXID"], "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": by_file[build("libgreet")]["SPDXID"]} in doc["relationships"]  # fmt: skip
    # Re-tagging the ref to another image drops the stale SBOM from the index.
    nix_image("--store-path", build("libgreet"), "--out", out)
    index = json.loads((out / "index.json").read_bytes())
    assert [m.get("artifactType") for m in index["manifests"]] == [None]


def test_nix_snapshotter_image(tmp_path: Path, podman: Podman) -> None:
    app, busybox = build("app"), build("busyboxPkg")
    out = tmp_path / "snap"
    res = nix_image("--store-path", app, "--copy-to-root", busybox, "--out", out, "--nix-snapshotter")
    _, manifest, _ = image_parts(out)
    (layer,) = manifest["layers"]
    paths = sorted(closure(app) | closure(busybox))
    assert layer["annotations"]["containerd.io/snapshot/nix-layer"] == "true"
    assert [layer["annotations"][f"containerd.io/snapshot/nix-store-path.{i}"] for i in range(len(paths))] == paths
    with tarfile.open(blob_path(out, layer["digest"])) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    for p in paths:
        assert members[p.lstrip("/")].isdir()
        assert not [n for n in members if n.startswith(p.lstrip("/") + "/")], "mountpoints are empty"
    assert members["bin/sh"].issym()
    ref = res.stdout.split("nix-snapshotter reference: ")[1].strip()
    assert ref.startswith("nix:0/nix/store/") and ref.endswith("-latest.tar")
    archive = ref[len("nix:0") :]
    inspected = json.loads(run("skopeo", "inspect", f"oci-archive:{archive}").stdout)
    assert inspected["Digest"] == image_parts(out)[0]["digest"]
    # nix-snapshotter mounts the store paths at their mountpoints; the host's store stands in.
    shown = podman.run(
        out, "latest", "-c", f"{app}/bin/hello", entrypoint="/bin/sh", volumes=["/nix/store:/nix/store:ro"]
    )
    assert shown.stdout.endswith("app 1.0\n")


def test_runtime_bundle_validates_and_runs(tmp_path: Path, podman: Podman) -> None:
    app, busybox, etc = build("app"), build("busyboxPkg"), build("etc")
    out = tmp_path / "bundle"
    nix_image(
        "--store-path", app, "--copy-to-root", busybox, "--copy-to-root", etc, "--copy-to-root", app,
        "--out", out, "--format", "runtime-bundle", "--entrypoint", "/bin/sh", "--cmd", '["-c", "id -u; hello"]',
        "--user", "app", "--readonly", "--mount", "/tmp:/host-tmp:rbind,rw", "--sbom",
    )  # fmt: skip
    config = json.loads((out / "config.json").read_bytes())
    validate_runtime_spec(config)
    assert config["process"]["args"] == ["/bin/sh", "-c", "id -u; hello"]
    assert config["process"]["user"] == {"uid": 1000, "gid": 1000}
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert {"destination": "/host-tmp", "type": "bind", "source": "/tmp", "options": ["rbind", "rw"]} in config[
        "mounts"
    ]
    rootfs = out / "rootfs"
    assert sorted(p.name for p in (rootfs / "nix" / "store").iterdir()) == sorted(
        Path(p).name for p in closure(app) | closure(busybox) | closure(etc)
    )
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    output = run(chroot, "--userspec=1000:1000", rootfs, *config["process"]["args"], env={"PATH": "/bin"}).stdout
    assert output == "1000\nhello from libgreet\napp 1.0\n"
    assert podman.run_bundle(out).stdout == output, "runc runs the bundle as it is"
    assert json.loads((out / "sbom.spdx.json").read_bytes())["spdxVersion"] == "SPDX-2.3"
    assert json.loads((out / "sbom.cdx.json").read_bytes())["specVersion"] == "1.5"
    assert json.loads((out / "provenance.intoto.json").read_bytes())["_type"] == "https://in-toto.io/Statement/v1"


def test_docker_archive_format(tmp_path: Path, podman: Podman) -> None:
    out = tmp_path / "img.tar"
    nix_image("--store-path", build("app"), "--out", out, "--format", "docker-archive", "--tag", "demo/hello:1",
              "--entrypoint", f"{build('app')}/bin/hello", "--workdir", "/nix", "--env", "A=b")  # fmt: skip
    cfg = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{out}").stdout)
    assert len(cfg["rootfs"]["diff_ids"]) == 3
    assert not list(tmp_path.glob(".layerforge-*"))
    assert podman.run_archive(out).stdout.endswith("app 1.0\n")
    busybox = f"{build('busyboxPkg')}/bin/busybox"
    script = f"{busybox} id -u; {busybox} pwd; {busybox} env"
    seen = podman.run_archive(out, "sh", "-c", script, entrypoint=busybox).stdout.splitlines()
    assert seen[:2] == ["0", "/nix"] and "A=b" in seen


def test_docker_archive_is_one_archive_streamed_or_from_the_cache(tmp_path: Path, podman: Podman) -> None:
    """Without a layer cache the layers are built straight into the archive, with one they
    are copied from blobs: the same bytes either way, run after run, with the OCI build's
    manifest digest; every reader sees each layer member as the tar its name promises."""
    base_root = tmp_path / "base-root"
    (base_root / "etc").mkdir(parents=True)
    (base_root / "etc" / "os-release").write_text("ID=base\n")
    base = tmp_path / "base"
    run_cli("dir-image", base_root, "--out", base, "--tag", "v1")  # gzip layers: decompressed into the archive
    app, busybox = build("app"), build("busyboxPkg")
    args = ("--store-path", app, "--copy-to-root", busybox, "--from-image", f"{base}:v1", "--tag", "demo/app:1",
            "--entrypoint", f"{app}/bin/hello")  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    cache = tmp_path / "cache"
    runs = {
        "streamed": ["--no-cache"],
        "again": ["--no-cache"],
        "cold": ["--cache-dir", cache],
        "warm": ["--cache-dir", cache],
    }
    printed = {
        name: nix_image(*args, *extra, "--format", "docker-archive", "--out", out / f"{name}.tar")
        for name, extra in runs.items()
    }
    # The store-path layers come from the cache when warm; the copy-to-root layer is not
    # cached and is built every time (the summary counts it: it said `0 built` before).
    assert "0 reused, 4 built" in printed["cold"].stderr and "3 reused, 1 built" in printed["warm"].stderr
    archives = {name: (out / f"{name}.tar").read_bytes() for name in runs}
    assert len(set(archives.values())) == 1, "the same archive whichever way the layers came"
    oci = nix_image(*args, "--no-cache", "--compression", "none", "--out", tmp_path / "layout")
    digests = {p.stdout.split()[-1] for p in printed.values()}
    assert digests == {oci.stdout.split()[-1]}
    assert not list(out.glob(".layerforge-*")) and not list(tmp_path.glob(".layerforge-*"))

    archive = out / "streamed.tar"
    names = run("tar", "-tf", archive).stdout.split()
    _, _, oci_config = image_parts(tmp_path / "layout", "demo/app:1")
    diff_ids = oci_config["rootfs"]["diff_ids"]
    assert [n for n in names if n.endswith("/layer.tar")] == [f"{d[7:]}/layer.tar" for d in diff_ids]
    assert names[-2:] == ["manifest.json", "repositories"]
    with tarfile.open(archive) as tar:
        for diff_id in diff_ids:
            member = tar.extractfile(f"{diff_id[7:]}/layer.tar")
            assert member is not None
            assert "sha256:" + hashlib.sha256(member.read()).hexdigest() == diff_id
    skopeo_config = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}").stdout)
    assert skopeo_config["rootfs"]["diff_ids"] == diff_ids
    assert podman.run_archive(archive).stdout.endswith("app 1.0\n")


def assert_clean_failure(proc: subprocess.CompletedProcess[str], out: Path, *needles: str) -> None:
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()[-1]
    for n in needles:
        assert n in err, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_bad_inputs(tmp_path: Path) -> None:
    out = tmp_path / "never"
    app, busybox, othersh = build("app"), build("busyboxPkg"), build("othersh")
    missing = "/nix/store/" + "a" * 32 + "-missing-1.0"
    cases = [
        (["--store-path", "/usr/bin/env"], ["--store-path", "not a Nix store path"]),
        (["--store-path", f"{app}/bin/hello"], ["inside a store path", app]),
        (["--store-path", missing], ["--store-path", "missing-1.0", "not in the local Nix store"]),
        (["--nix-file", IMAGES_NIX, "-A", "nosuchattr"], ["nix-build", "nosuchattr"]),
        (["--nix-file", IMAGES_NIX.parent / "broken.nix", "-A", "bad"], ["this attribute cannot be evaluated"]),
        (["--store-path", app, "--entrypoint", "/nix/store/" + "b" * 32 + "-other/bin/x"],
         ["--entrypoint", "not in the image's closure"]),
        (["--store-path", app, "--entrypoint", f"{app}/bin/nothere"], ["--entrypoint", "does not exist"]),
        (["--store-path", app, "--max-layers", "0"], ["--max-layers", "from 1 to 125"]),
        (["--store-path", app, "--max-layers", "126"], ["--max-layers", "from 1 to 125"]),
        (["--store-path", app, "--layering", "per-path", "--max-layers", "2"], ["per-path needs 3 layers"]),
        (["--store-path", app, "--copy-to-root", busybox, "--copy-to-root", othersh],
         ["conflicting files for /bin/sh"]),
        (["--store-path", app, "--layer-group", "/nix/store/" + "c" * 32 + "-x"],
         ["--layer-group", "not in the image's closure"]),
        (["--store-path", app, "--perms", "no-equals"], ["--perms"]),
        (["--store-path", app, "--perms", "(=0755"], ["invalid permission pattern"]),
        ([], ["--nix-file FILE, --flake REF, --derivation DRV or at least one --store-path"]),
    ]  # fmt: skip
    for args, needles in cases:
        proc = nix_image(*args, "--out", out, check=False)
        assert_clean_failure(proc, out, *needles)


def run_jobs(plan: dict[str, Any], root: Path) -> list[Path]:
    """Run each job of ``plan`` as Pants does (its argv as it is, in a directory of its own
    under ``root``): the layer directories it wrote, in image order."""
    dirs = []
    for i, job in enumerate(plan["jobs"]):
        assert job["argv"][:2] == ["nix-layer", "--job"] and len(job["argv"]) == 3
        sandbox = root / f"job{i}"
        sandbox.mkdir()
        run_cli(*job["argv"], cwd=sandbox)
        assert sorted(p.name for p in sandbox.iterdir()) == sorted(job["outs"])
        dirs += [sandbox / out for out in job["outs"]]
    return dirs


def test_staged_commands_give_the_same_image(tmp_path: Path, podman: Podman) -> None:
    """nix-plan -> one nix-layer per planned layer -> nix-assemble == nix-image (Pants runs the steps)."""
    app, busybox = build("app"), build("busyboxPkg")
    common = ["--store-path", app, "--copy-to-root", busybox, "--entrypoint", "/bin/sh", "--sbom", "--max-layers", "3"]
    whole = nix_image(*common, "--out", tmp_path / "whole", "--no-cache").stdout.split()[-1]
    run_cli("nix-plan", *common, "--out", tmp_path / "plan.json", env=os.environ.copy())
    plan = json.loads((tmp_path / "plan.json").read_bytes())
    # the two small store-path layers are one batch, built by one process
    assert [(job["kind"], job["outs"]) for job in plan["jobs"]] == [
        ("store-paths", ["layer1", "layer2"]), ("root", ["layer"])]  # fmt: skip
    dirs = run_jobs(plan, tmp_path)
    out = run_cli("nix-assemble", "--plan", tmp_path / "plan.json", *[a for d in dirs for a in ("--layer-dir", d)],
                  "--out", tmp_path / "staged").stdout  # fmt: skip
    assert out.split()[-1] == whole
    assert (tmp_path / "staged" / "index.json").read_bytes() == (tmp_path / "whole" / "index.json").read_bytes()
    assert podman.run(tmp_path / "staged", "latest", "-c", "echo staged").stdout == "staged\n"
    assert_runs(podman, tmp_path / "staged")
    bad = run_cli("nix-assemble", "--plan", tmp_path / "plan.json", "--layer-dir", dirs[0], "--out", tmp_path / "x",
                  check=False)  # fmt: skip
    assert bad.returncode == 1 and "the plan has 3 layers, 1 were given" in bad.stderr


def test_nix_plans_writes_the_plans_nix_plan_writes(tmp_path: Path) -> None:
    """`nix-plans` (what Pants runs for the images of one shared evaluation) writes, for each
    argv of its file, the plan file that `nix-plan` of the argv writes (byte for byte where no
    other image needs a cut of its batches); any failing argv fails the whole (Pants then
    plans each image alone)."""
    app, busybox = build("app"), build("busyboxPkg")
    drvs = {}
    for attr in ("app", "busyboxPkg", "etc"):
        proc = subprocess.run(["nix-instantiate", str(IMAGES_NIX), "-A", attr], capture_output=True, text=True,
                              env=nix_env(), timeout=120, check=True)  # fmt: skip
        drvs[attr] = f"--derivation={proc.stdout.strip()}!out"
    argvs = [
        ["--store-path", app, "--max-layers", "3", "--tag", "one"],
        ["--store-path", app, "--copy-to-root", busybox, "--entrypoint", "/bin/sh", "--layering", "per-path"],
        # derivations (what Pants gives): the closures come from one query of all of them
        [drvs["app"], f"--copy-to-root-derivation={drvs['busyboxPkg'][13:]}", "--entrypoint", "/bin/sh"],
        [drvs["etc"], "--layering", "per-path"],
        [drvs["app"], drvs["etc"], "--tag", "both"],
    ]
    for i, argv in enumerate(argvs):
        run_cli("nix-plan", *argv, "--out", tmp_path / f"alone-{i}.json", env=os.environ.copy())
    (tmp_path / "batch").mkdir()
    document = {"plans": [[*argv, f"--out=plan-{i}.json"] for i, argv in enumerate(argvs)]}
    (tmp_path / "batch" / "argvs.json").write_text(json.dumps(document))
    run_cli("nix-plans", "argvs.json", cwd=tmp_path / "batch", env=os.environ.copy())
    for i in range(len(argvs)):
        together = json.loads((tmp_path / "batch" / f"plan-{i}.json").read_bytes())
        alone = json.loads((tmp_path / f"alone-{i}.json").read_bytes())
        # the same plan, but for where its batches of small layers are cut so that each is one
        # process for all the images holding it (shared_cuts.py): the same jobs, in order
        assert {k: v for k, v in together.items() if k not in ("jobs", "cutsAfter")} == {
            k: v for k, v in alone.items() if k not in ("jobs", "cutsAfter")}  # fmt: skip
        assert alone["cutsAfter"] == [] and together["layerBatches"] == "shared"
        layers = [[{**x, "out": None} for j in p["jobs"] for x in json.loads(j["argv"][2])["layers"]]
                  for p in (together, alone)]  # fmt: skip
        assert layers[0] == layers[1]
        if not together["cutsAfter"]:
            assert (tmp_path / "batch" / f"plan-{i}.json").read_bytes() == (tmp_path / f"alone-{i}.json").read_bytes()
    bad = {"plans": [*document["plans"], ["--store-path", app, "--entrypoint", "/bin/nothere", "--out=plan-9.json"]]}
    (tmp_path / "batch" / "bad.json").write_text(json.dumps(bad))
    proc = run_cli("nix-plans", "bad.json", cwd=tmp_path / "batch", check=False, env=os.environ.copy())
    assert proc.returncode != 0 and "--entrypoint" in proc.stderr and not (tmp_path / "batch" / "plan-9.json").exists()
    same = {"plans": [[*argvs[0], "--out=x.json"], [*argvs[1], "--out=./x.json"]]}
    (tmp_path / "batch" / "same.json").write_text(json.dumps(same))
    proc = run_cli("nix-plans", "same.json", cwd=tmp_path / "batch", check=False, env=os.environ.copy())
    assert proc.returncode == 2 and "write" in proc.stderr


def test_assembly_without_layer_blobs_leaves_out_exactly_the_layer_blobs(tmp_path: Path) -> None:
    """`nix-assemble --without-layer-blobs` (what Pants runs: it merges each layer process's
    blob into the output itself) reads only each layer directory's layer.json and writes the
    layout the whole assembly writes, minus the layer blobs: adding them back gives the same
    tree, byte for byte, which skopeo reads."""
    app, busybox = build("app"), build("busyboxPkg")
    common = ["--store-path", app, "--copy-to-root", busybox, "--max-layers", "3", "--sbom"]
    run_cli("nix-plan", *common, "--out", tmp_path / "plan.json", env=os.environ.copy())
    plan = json.loads((tmp_path / "plan.json").read_bytes())
    dirs, metas = run_jobs(plan, tmp_path), []
    for i, d in enumerate(dirs):
        meta = tmp_path / f"meta{i}"  # the layer.json alone, as the assembly sandbox holds it
        meta.mkdir()
        shutil.copy(d / "layer.json", meta / "layer.json")
        metas.append(meta)

    def layer_args(ds: list[Path]) -> list[str | Path]:
        return [a for d in ds for a in ("--layer-dir", d)]

    run_cli("nix-assemble", "--plan", tmp_path / "plan.json", *layer_args(dirs), "--out", tmp_path / "full")
    run_cli("nix-assemble", "--plan", tmp_path / "plan.json", *layer_args(metas), "--out", tmp_path / "json",
            "--without-layer-blobs")  # fmt: skip
    full, json_only = tree_bytes(tmp_path / "full"), tree_bytes(tmp_path / "json")
    blobs = {f"blobs/sha256/{json.loads((d / 'layer.json').read_bytes())['descriptor']['digest'][7:]}" for d in dirs}
    assert len(blobs) == 3 and blobs <= set(full) and not blobs & set(json_only)
    assert {k: v for k, v in full.items() if k not in blobs} == json_only
    for blob in blobs:  # the caller's merge: each blob under its own digest
        target = tmp_path / "json" / blob
        shutil.copy(tmp_path / "full" / blob, target)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == target.name
    assert tree_bytes(tmp_path / "json") == full
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{tmp_path / 'json'}:latest"], capture_output=True,
                             text=True, check=True)  # fmt: skip
    assert len(json.loads(inspect.stdout)["Layers"]) == 3
    canary = tmp_path / "canary"  # beside the output: nothing outside it may change
    (canary / "sub").mkdir(parents=True)
    (canary / "sub" / "keep").write_bytes(b"canary")
    before = snapshot(tmp_path)
    without = run_cli("nix-assemble", "--plan", tmp_path / "plan.json", *layer_args(metas), "--out", tmp_path / "x",
                      check=False)  # fmt: skip
    assert without.returncode == 1 and "is missing" in without.stderr and not (tmp_path / "x" / "index.json").exists()
    assert len(without.stderr.strip().splitlines()) == 1, without.stderr
    after = snapshot(tmp_path)
    outside = {k: v for k, v in after["entries"].items() if k != "x" and not k.startswith("x/")}
    assert outside == before["entries"] and after["hardlinks"] == before["hardlinks"]


def layer_dir_state(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under ``root`` (a layer directory): its mode and, for files, its bytes."""
    return {str(p.relative_to(root)): (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}  # fmt: skip


def test_the_native_command_builds_store_path_jobs_as_python_does(tmp_path: Path) -> None:
    """The wheel's native command builds a plan's store-path jobs itself (it never starts
    Python: the interpreter it would exec does not exist here), byte for byte the layer
    directory the Python command writes; the root job, and a store path this store lacks,
    go to Python."""
    app, busybox, etc = build("app"), build("busyboxPkg"), build("etc")
    run_cli("nix-plan", "--store-path", app, "--store-path", etc, "--copy-to-root", busybox, "--user", "app",
            "--perms", f"{app}/bin(/.*)?=0750:app:app", "--perms", f"{etc}=:0:0", "--compression", "zstd",
            "--level", "5", "--layering", "per-path", "--out", tmp_path / "plan.json",
            env=os.environ.copy())  # fmt: skip
    jobs = json.loads((tmp_path / "plan.json").read_bytes())["jobs"]
    kinds = [job["kind"] for job in jobs]
    assert kinds == ["store-paths", "root"], kinds
    no_python = {**os.environ, "LAYERFORGE_PYTHON": str(tmp_path / "no-python")}
    python_only = {**os.environ, "LAYERFORGE_NATIVE_NIX_LAYER": "0"}
    assert len(jobs[0]["outs"]) >= 2, "the small layers are a batch"
    for i, job in enumerate(jobs):
        native, python = tmp_path / f"native{i}", tmp_path / f"python{i}"
        native.mkdir()
        python.mkdir()
        by_python = run_cli(*job["argv"], env=python_only, cwd=python)
        by_native = run_cli(*job["argv"], env=no_python, check=False, cwd=native)
        if job["kind"] == "store-paths":
            assert by_native.returncode == 0, by_native.stderr
            assert layer_dir_state(native) == layer_dir_state(python)
            assert all((native / out / "contents.json").is_file() for out in job["outs"])
            assert by_native.stdout == by_python.stdout
            assert [line.split(":")[0] for line in by_native.stdout.splitlines()] == job["outs"]
        else:
            assert by_native.returncode == 127 and "cannot run the Python part" in by_native.stderr
            assert not any(native.iterdir())
    missing = "/nix/store/" + "0" * 32 + "-not-in-this-store-1.0"
    proc = run_cli("nix-layer", "--job", layer_job((tmp_path / "m", store_layer(missing))), env=no_python, check=False)
    assert proc.returncode == 127 and not (tmp_path / "m").exists(), "Python realises what the store lacks"
    # files in the store that Nix does not hold valid (a build or substitution under way, a
    # path being collected) are never archived by the native command (it reads Nix's database)
    unregistered = Path("/nix/store/" + "1" * 32 + f"-layerforge-unregistered-{os.getpid()}")
    try:
        (unregistered / "bin").mkdir(parents=True)
        (unregistered / "bin" / "half-written").write_bytes(b"#!/bin/sh\n")
        job = layer_job((tmp_path / "u", store_layer(str(unregistered))))
        proc = run_cli("nix-layer", "--job", job, env=no_python, check=False)
        assert proc.returncode == 127 and not (tmp_path / "u").exists(), "Python answers, and refuses it"
    finally:
        shutil.rmtree(unregistered, ignore_errors=True)
    # a batch that fails at its second layer leaves none of its layers, native or Python
    batch = jobs[0]
    for name, env in (("native", no_python), ("python", python_only)):
        sandbox = tmp_path / f"failing-{name}"
        sandbox.mkdir()
        (sandbox / "blocker").write_bytes(b"a file, not a directory")
        document = json.loads(batch["argv"][2])
        document["layers"][1]["out"] = "blocker/x"
        argv = [*batch["argv"][:2], json.dumps(document)]
        proc = run_cli(*argv, env=env, check=False, cwd=sandbox)
        assert proc.returncode == (127 if env is no_python else 1), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert [p.name for p in sandbox.iterdir()] == ["blocker"], f"{name}: {list(sandbox.rglob('*'))}"


def test_entrypoint_inherited_from_a_nix_base_image(tmp_path: Path, podman: Podman) -> None:
    """The base's entrypoint resolves into store paths of the base's closure, not the new one."""
    app, busybox = build("app"), build("busyboxPkg")
    base = tmp_path / "base"
    nix_image("--store-path", app, "--copy-to-root", busybox, "--copy-to-root", app, "--entrypoint", "/bin/hello",
              "--out", base)  # fmt: skip
    out = tmp_path / "img"
    nix_image("--store-path", build("etc"), "--from-image", base, "--out", out)
    _, _, config = image_parts(out)
    assert config["config"]["Entrypoint"] == ["/bin/hello"]
    rootfs = unpack(out, "latest", tmp_path / "bundle")
    assert run("chroot", rootfs, "/bin/hello").stdout.endswith("app 1.0\n")
    assert_runs(podman, out, output="hello from libgreet\napp 1.0\n")
    assert_runs(podman, base, output="hello from libgreet\napp 1.0\n")
