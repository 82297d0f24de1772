"""The Pants backend, through real `pants` runs: package, cache hits, one-layer rebuilds,
publish to a real registry, a real BuildGrid remote cache, and errors in BUILD files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.buildgrid_support import buildgrid_server
from tests.helpers import image_parts, index_entry, run, run_cli, tree_bytes, verify_blobs
from tests.kernel_support import MARKER, boot, busybox_rootfs, debian_kernel
from tests.nix_support import IMAGES_NIX
from tests.nydus_support import blob_dir, bootstrap_bytes, fsck_erofs, nydus_manifest
from tests.nydus_support import check as nydus_check
from tests.pants_support import REPO, PantsRepo, native_client
from tests.registry_support import FaultProxy, Registry
from tests.runtime_support import Podman, assert_runs_as_configured

APP_BUILD = """
nix_oci_image(
    name="app",
    nix_file="images.nix",
    attr="app",
    argstrs={{"appVersion": "{version}"}},
    copy_to_root_attrs=["busyboxPkg", "app"],
    layering="per-path",
    entrypoint=["/bin/hello"],
    env={{"PATH": "/bin"}},
    repository="team/app",
    image_tags=["{version}", "latest"],
    sbom=True,
)
"""


def app_repo(root: Path, version: str = "1.0", extra_toml: str = "", extra_build: str = "") -> PantsRepo:
    repo = PantsRepo(root, extra_toml)
    repo.write("images/images.nix", IMAGES_NIX.read_text())
    repo.write("images/BUILD", APP_BUILD.format(version=version) + extra_build)
    return repo


def layers(executed: list[str]) -> list[str]:
    return [e for e in executed if e.startswith("Build layer")]


def test_pantsd_runs_go_through_the_native_client(tmp_path: Path) -> None:
    """./pants installs Pants' native client and pantsd runs go through it: with a pantsd of
    these options running, the client hands the run over itself, never exec'ing the Python
    client it names (`_PANTS_SERVER_EXE`, here a path that does not exist); without pantsd it
    execs that Python client, so the bogus path fails the run."""
    repo = PantsRepo(tmp_path / "repo")
    client = native_client(repo.pants)
    assert client is not None and os.access(client, os.X_OK), "./pants did not install pants-native-client"
    assert repo.client(True)[0] == str(client), "the tests' pantsd runs start as users' do"
    try:
        first = repo.run("--version", pantsd=True)  # no pantsd yet: the Python client starts one
        assert first.returncode == 0 and first.stdout.strip() == "2.17.1", first.stderr[-2000:]
        bogus = {"_PANTS_SERVER_EXE": str(tmp_path / "no-such-pants")}
        handed = repo.run("--version", pantsd=True, env=bogus)
        assert handed.returncode == 0 and handed.stdout.strip() == "2.17.1", handed.stderr[-2000:]
        assert "Failed to exec pants" not in handed.stderr
        log = (repo.root / ".pants.d" / "pants.log").read_text()
        assert log.count("handling request: `--pantsd --keep-sandboxes=always --stats-log") == 2, log[-3000:]
        off = subprocess.run([str(client), "--no-pantsd", "--version"], cwd=repo.root, env=repo.env(bogus),
                             capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert off.returncode != 0 and "Failed to exec pants" in off.stderr, off.stderr[-2000:]
    finally:
        repo.stop_pantsd()


def test_help_documents_the_targets(tmp_path: Path) -> None:
    repo = PantsRepo(tmp_path / "repo")
    out = repo.run("help", "nix_oci_image")
    assert out.returncode == 0, out.stderr
    for field in ("nix_file", "flake", "flake_sources", "store_paths", "layering", "max_layers", "copy_to_root_attrs",
                  "uid", "gid", "base_image", "image_tags", "registries", "skip_push", "sbom"):  # fmt: skip
        assert field in out.stdout, field
    assert "changing one store path rebuilds only its layer or batch" in " ".join(out.stdout.split())


def test_package_repackage_and_change_one_input(tmp_path: Path, podman: Podman) -> None:
    repo = app_repo(tmp_path / "repo")
    first = repo.run("package", "images:app")
    assert first.returncode == 0, first.stderr
    ran = PantsRepo.executed(first)
    # busybox, libgreet and app are small: batched (cut where their own store paths say), each
    # layer built by one process; the root layer alone, last
    assert sum(PantsRepo.layers_built(e) for e in layers(ran)) == 4 and "Build layer 4/4 of images:app" in ran, ran
    assert len(layers(ran)) < 4, f"small layers share processes: {ran}"
    assert any(e.startswith("Plan the layers") for e in ran) and any(e.startswith("Assemble") for e in ran)
    layout = repo.root / "dist" / "images" / "app"
    digest = json.loads(run("skopeo", "inspect", f"oci:{layout}:1.0").stdout)["Digest"]
    assert digest in first.stderr, "package reports the manifest digest"
    run("umoci", "unpack", "--image", f"{layout}:1.0", tmp_path / "bundle")
    assert run("chroot", tmp_path / "bundle" / "rootfs", "/bin/hello").stdout.endswith("app 1.0\n")
    assert podman.run(layout, "1.0").stdout == "hello from libgreet\napp 1.0\n"
    assert_runs_as_configured(podman.probe(layout, "1.0", "/bin/busybox"), image_parts(layout, "1.0")[2])
    verify_blobs(layout)
    before = tree_bytes(layout)

    again = repo.run("package", "images:app")
    assert again.returncode == 0, again.stderr
    assert PantsRepo.executed(again) == [], "a re-package is answered by the cache"
    assert tree_bytes(layout) == before

    repo.write("images/BUILD", APP_BUILD.format(version="2.0"))
    changed = repo.run("package", "images:app")
    assert changed.returncode == 0, changed.stderr
    ran = PantsRepo.executed(changed)
    assert len(layers(ran)) == 2, f"only the app's batch and the root layer rebuild: {ran}"
    assert len(ran) == 4, ran  # plan + 2 layers + assembly
    _, m1, _ = image_parts(layout, "2.0")
    assert run("umoci", "unpack", "--image", f"{layout}:2.0", tmp_path / "b2")
    assert run("chroot", tmp_path / "b2" / "rootfs", "/bin/hello").stdout.endswith("app 2.0\n")
    assert podman.run(layout, "2.0").stdout == "hello from libgreet\napp 2.0\n"
    old_layers = {layer["digest"] for layer in image_parts_from(before)}
    new_layers = {layer["digest"] for layer in m1["layers"]}
    assert len(old_layers & new_layers) == 2, "busybox and libgreet layers are the same blobs"


def image_parts_from(files: dict[str, bytes]) -> list[dict[str, str]]:
    index = json.loads(files["index.json"])
    entry = next(m for m in index["manifests"] if not m.get("artifactType"))
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    return list(manifest["layers"])


def test_base_image_from_another_target(tmp_path: Path, podman: Podman) -> None:
    repo = app_repo(
        tmp_path / "repo",
        extra_build="""
nix_oci_image(
    name="on-base",
    nix_file="images.nix",
    attr="etc",
    base_image=":app",
    labels={"layer": "top"},
)
""",
    )
    out = repo.run("package", "images:on-base")
    assert out.returncode == 0, out.stderr
    layout = repo.root / "dist" / "images" / "on-base"
    _, manifest, config = image_parts(layout, "latest")
    assert config["config"]["Env"] == ["PATH=/bin"] and config["config"]["Entrypoint"] == ["/bin/hello"]
    assert config["config"]["Labels"] == {"layer": "top"}
    assert len(manifest["layers"]) == 4 + 1
    run("umoci", "unpack", "--image", f"{layout}:latest", tmp_path / "bundle")
    rootfs = tmp_path / "bundle" / "rootfs"
    assert run("chroot", rootfs, "/bin/hello").stdout.endswith("app 1.0\n")
    assert podman.run(layout, "latest").stdout == "hello from libgreet\napp 1.0\n"
    assert_runs_as_configured(podman.probe(layout, "latest", "/bin/busybox"), config)
    assert any(p.name.endswith("-etc-files-1") for p in (rootfs / "nix" / "store").iterdir())
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == "1.0"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "registry").start()
    yield reg
    reg.stop()


def test_publish_to_a_registry(tmp_path: Path, registry: Registry) -> None:
    proxy = FaultProxy(registry.host).start()  # counts what each publish asks
    try:
        _publish_and_publish_again(tmp_path, registry, proxy)
    finally:
        proxy.stop()


def _publish_and_publish_again(tmp_path: Path, registry: Registry, proxy: FaultProxy) -> None:
    extra_toml = f"""
[layerforge.registries.local]
address = "{proxy.host}"
default = true
"""
    repo = app_repo(
        tmp_path / "repo",
        extra_toml=extra_toml,
        extra_build='\nnix_oci_image(name="private", nix_file="images.nix", attr="libgreet", skip_push=True)\n',
    )
    packaged = repo.run("package", "images::")
    assert packaged.returncode == 0, packaged.stderr
    out = repo.run("publish", "images::")
    assert out.returncode == 0, out.stdout + out.stderr
    assert [e for e in PantsRepo.executed(out) if not e.startswith("Push")] == [], "publish pushes what package built"
    text = out.stdout + out.stderr
    assert f"{proxy.host}/team/app:1.0" in text and "published" in text.lower()
    assert "skip_push" in text
    layout = repo.root / "dist" / "images" / "app"
    local = json.loads(run("skopeo", "inspect", f"oci:{layout}:1.0").stdout)["Digest"]
    for tag in ("1.0", "latest"):
        remote = json.loads(
            run("skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/team/app:{tag}").stdout
        )
        assert remote["Digest"] == local
    back = tmp_path / "back"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/team/app:1.0", f"oci:{back}:x")
    verify_blobs(back)
    assert not registry.manifest_exists("private", "latest"), "skip_push is respected"
    fallback = f"sha256-{local.split(':')[1]}"
    assert registry.manifest_exists("team/app", fallback), "the SBOMs and provenance are pushed as referrers"

    # Publishing again sends nothing and goes through the native command, as the command line
    # does: it checks the first push's receipt with HEAD requests only (two tags, then each of
    # the three referrers, SPDX and CycloneDX SBOMs and provenance, and the tag index listing
    # it), where the Python push would also GET the referrers and the index.
    # Publish asks first which layers the registry lacks (a dry run: the two tags, the image
    # and the three referrers, HEAD only; none, as it holds the image) and gives the push no
    # layer: the receipt still holds.
    proxy.reset_counts()
    again = repo.run("publish", "images::")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(unchanged)" in again.stdout + again.stderr
    assert dict(proxy.requests) == {"HEAD app/manifests": 6 + 2 + 3 * 2}, proxy.requests
    assert proxy.body_bytes == 0


@pytest.fixture
def buildgrid(tmp_path: Path) -> Iterator[str]:
    with buildgrid_server(tmp_path / "buildgrid") as address:
        yield address


def test_remote_cache_with_buildgrid(tmp_path: Path, buildgrid: str, podman: Podman) -> None:
    repo = app_repo(tmp_path / "repo")
    remote = [
        "--remote-cache-read",
        "--remote-cache-write",
        f"--remote-store-address={buildgrid}",
        "--remote-instance-name=",
    ]
    first = repo.run(*remote, "package", "images:app", store=tmp_path / "store-a", named=tmp_path / "named-a")
    assert first.returncode == 0, first.stderr
    ran = PantsRepo.executed(first)
    assert len(ran) == 4, ran  # plan + 2 layer processes (3 small layers, the root layer) + assembly, empty cache
    assert PantsRepo.counter(first, "remote_cache_write_successes") >= len(ran)
    layout = repo.root / "dist" / "images" / "app"
    built = tree_bytes(layout)
    shutil.rmtree(repo.root / "dist")

    second = repo.run(*remote, "package", "images:app", store=tmp_path / "store-b", named=tmp_path / "named-b")
    assert second.returncode == 0, second.stderr
    assert PantsRepo.executed(second) == [], "a fresh local cache rebuilds nothing: the remote cache answers"
    assert PantsRepo.counter(second, "remote_cache_requests_cached") >= len(ran)
    assert tree_bytes(layout) == built, "byte-identical dist outputs"
    assert podman.run(layout, "1.0").stdout == "hello from libgreet\napp 1.0\n"


# Bad BUILD input: each case in its own directory of one build root, run through one pantsd
# (a Pants start-up per case would cost ~10 s each). Needles name the target as {addr}.
BAD_NIX_CASES = [
    (
        'nix_oci_image(name="x", nix_file="images.nix", attr="app", layering="bogus")',
        ["layering", "{addr}", "bogus"],
    ),
    (
        'nix_oci_image(name="x", nix_file="images.nix", attr="app", max_layers=0)',
        ["max_layers", "{addr}", "from 1 to 125"],
    ),
    ('nix_oci_image(name="x", store_paths=["/usr/bin/env"])', ["store_paths", "{addr}", "/usr/bin/env"]),
    (
        'nix_oci_image(name="x", nix_file="images.nix", store_paths=["/nix/store/' + "a" * 32 + '-y"])',
        ["exactly one of `nix_file`, `flake` and `store_paths` (it has `nix_file` and `store_paths`)", "{addr}"],
    ),
    (
        'nix_oci_image(name="x", nix_file="images.nix", attr="app", base_image=":nope")',
        [":nope", "base_image", "{addr}"],
    ),
    (
        'files(name="f", sources=["images.nix"])\n'
        'nix_oci_image(name="x", nix_file="images.nix", attr="app", base_image=":f")',
        ["base_image", "{addr}", "`files` target", "must be an image target"],
    ),
    (
        'files(name="f", sources=["images.nix"])\nnydus_image(name="x", source_image=":f")',
        ["source_image", "{addr}", "`files` target", "(nix_oci_image or remote_oci_image or oci_image_index"],
    ),
    (
        'nix_oci_image(name="a", nix_file="images.nix", attr="app")\n'
        'nydus_image(name="x", source_image=":a", chunk_dict=":a")',
        ["chunk_dict", "{addr}", "`nix_oci_image` target", "nydus_image"],
    ),
    (
        'nix_oci_image(name="a", nix_file="images.nix", attr="app")\n'
        'nydus_image(name="x", source_image=":a", chunk_size="3KiB")',
        ["chunk_size", "{addr}", "power of two"],
    ),
    (
        'nix_oci_image(name="a", nix_file="images.nix", attr="app")\n'
        'nydus_image(name="x", source_image=":a", compressor="gzip")',
        ["compressor", "{addr}", "gzip"],
    ),
    (
        'nix_oci_image(name="a", nix_file="images.nix", attr="app")\n'
        'nydus_image(name="x", source_image=":a", prefetch=["/usr", "etc"])',
        ["The `prefetch` field of {addr}: 'etc' is not an absolute path"],
    ),
    (
        'nix_oci_image(name="x", nix_file="images.nix", attr="app", compression_level=10)',
        ["The `compression_level` field of {addr}: 10 is not a gzip level from 1 to 9"],
    ),
    (
        'nix_oci_image(name="x", nix_file="images.nix", attr="app", compression="none", compression_level=3)',
        ["The `compression_level` field of {addr}: 3 is given for 'none' layers, which take no level"],
    ),
    (
        'nix_oci_image(name="x", nix_file="images.nix", attr="app", image_tags=["{build_args.NOPE}"])',
        ["image_tags", "{addr}", "build_args.NOPE"],
    ),
    (
        'nix_oci_image(name="x", nix_file="images.nix", attr="nosuchattr")',
        ["The `nix_file` field of {addr}: nix-instantiate", "nosuchattr"],
    ),
    ('nix_oci_image(name="x", nix_file="images.nix", attr="app", dependencies=[":missing"])', [":missing", "{addr}"]),
    (
        'remote_oci_image(name="x", image="base/multi@sha256:00")',
        ["The `image` field of {addr} must be REGISTRY/REPO[:TAG]@sha256:DIGEST", "base/multi@sha256:00"],
    ),
    (
        'remote_oci_image(name="x", image="r.example/a@sha256:' + "0" * 64 + '", platforms=["linux"])',
        ["The `platforms` field of {addr}", "'linux'", "OS/ARCH[/VARIANT]"],
    ),
    ('nix_oci_image(name="x", nix_file="images.nix", attr="app", system="vax-vms")', ["system", "{addr}", "vax-vms"]),
    (
        'nix_oci_image(name="x", nix_file="images.nix", attr="app", system="aarch64-linux", argstrs={"system": "s"})',
        ["`argstrs` field of {addr}", "`system` field gives"],
    ),
    (
        'files(name="f", sources=["images.nix"])\noci_image_index(name="x", images=[":f"])',
        ["`images` field of {addr}", "`files` target", "remote_oci_image or oci_image_index or nydus_image"],
    ),
]
BAD_UNIKRAFT_CASES = [
    (
        'unikraft_image(name="x", kernel="nope.elf", arch="x86_64", plat="qemu")',
        ["`kernel` field of {addr}", "nope.elf", "no dependency provides"],
    ),
    ('unikraft_image(name="x", kernel="k", arch="x86_64", plat="vbox")', ["plat", "{addr}", "vbox"]),
    (
        'files(name="k", sources=["k"])\n'
        'unikraft_image(name="x", kernel="k", arch="x86_64", plat="qemu", platforms=[":k"], dependencies=[":k"])',
        ["`platforms` field of {addr}", "`files` target", "unikraft_image"],
    ),
    (
        'files(name="k", sources=["k"])\n'
        'unikraft_image(name="x", kernel="k", arch="x86_64", plat="qemu", dependencies=[":k"])',
        ["{addr}", "--kernel", "neither an ELF kernel nor a Linux bzImage"],
    ),
]
BAD_CASES = [("n", i, c) for i, c in enumerate(BAD_NIX_CASES)] + [("u", i, c) for i, c in enumerate(BAD_UNIKRAFT_CASES)]


@pytest.fixture(scope="module")
def bad_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PantsRepo]:
    repo = PantsRepo(tmp_path_factory.mktemp("bad") / "repo")
    for kind, i, (build, _) in BAD_CASES:
        if kind == "n":
            repo.write(f"n{i}/images.nix", IMAGES_NIX.read_text())
        else:
            repo.write(f"u{i}/k", "not a kernel\n")
        repo.write(f"{kind}{i}/BUILD", build + "\n")
    repo.write("good/images.nix", IMAGES_NIX.read_text())
    repo.write("good/BUILD", 'nix_oci_image(name="x", nix_file="images.nix", attr="app")\n')
    yield repo
    repo.stop_pantsd()


@pytest.mark.parametrize(("kind", "i", "case"), BAD_CASES, ids=[f"{k}{i}" for k, i, _ in BAD_CASES])
def test_bad_build_files_name_target_and_field(
    bad_repo: PantsRepo, kind: str, i: int, case: tuple[str, list[str]]
) -> None:
    addr = f"{kind}{i}:x"
    out = bad_repo.run("package", addr, pantsd=True)
    assert out.returncode != 0
    assert not (bad_repo.root / "dist" / f"{kind}{i}").exists(), "nothing is written"
    for needle in case[1]:
        n = needle.replace("{addr}", addr)
        assert n in out.stderr, f"{n!r} missing from:\n{out.stderr}"


def test_no_interpreter_for_the_tool_names_constraints_and_search_path(bad_repo: PantsRepo) -> None:
    """The search-path Python provider (enabled in pants.toml) explains a missing interpreter."""
    out = bad_repo.run("--layerforge-interpreter-constraints=['CPython==3.8.*']", "package", "good:x", pantsd=True)
    assert out.returncode != 0
    for needle in ("No Python interpreter meeting the interpreter constraints CPython==3.8.*", "python3.8",
                   "[python-bootstrap].search_path"):  # fmt: skip
        assert needle in out.stderr, f"{needle!r} missing from:\n{out.stderr}"


def test_unknown_registry_alias_on_publish(tmp_path: Path) -> None:
    repo = app_repo(tmp_path / "repo")
    repo.write(
        "images/BUILD", APP_BUILD.format(version="1.0").replace("sbom=True,", 'sbom=True, registries=["@nope"],')
    )
    out = repo.run("publish", "images:app")
    assert out.returncode != 0
    assert "unknown registry alias '@nope'" in out.stderr and "images:app" in out.stderr


def test_repository_examples_build_with_the_readme_command(tmp_path: Path, podman: Podman) -> None:
    """`./pants package ::` in this repository (the README's main command) builds every example."""
    env = {**os.environ, "NO_SCIE_WARNING": "1"}
    proc = subprocess.run([str(REPO / "pants"), "--no-pantsd", "package", "::"], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=1800, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name in ("hello", "hello-snapshotter"):
        layout = REPO / "dist" / "examples.nix" / name
        run("skopeo", "inspect", f"oci:{layout}:{'1.0' if name == 'hello' else 'latest'}")
        verify_blobs(layout)
    hello = REPO / "dist" / "examples.nix" / "hello"
    assert podman.run(hello, "1.0").stdout == "hello from a layerforge example\n"
    assert_runs_as_configured(podman.probe(hello, "1.0", "/bin/busybox"), image_parts(hello, "1.0")[2])
    flake = REPO / "dist" / "examples.nix-flake" / "hello-flake"
    verify_blobs(flake)
    assert podman.run(flake, "1.0").stdout == "hello from a layerforge flake\nrunning as app in /home/app\n"
    probe = podman.probe(flake, "1.0", "/bin/busybox")
    assert_runs_as_configured(probe, image_parts(flake, "1.0")[2], uid=1000, gid=1000, home="/home/app")
    for name in ("hello-nydus", "hello-snapshotter-nydus"):
        layout = REPO / "dist" / "examples.nydus" / name
        verify_blobs(layout)
        manifest = nydus_manifest(layout, "1.0-nydus" if name == "hello-nydus" else "latest-nydus")
        bootstrap = tmp_path / f"{name}.boot"
        bootstrap.write_bytes(bootstrap_bytes(layout, manifest))
        blobs, _ = blob_dir(layout, manifest, tmp_path / f"{name}-blobs")
        report = nydus_check(bootstrap, blobs)
        assert "/bin/hello" in report.files, sorted(report.files)[:20]
        fsck_erofs(bootstrap, report, tmp_path)
    for name in ("hello", "hello-nix-rootfs"):
        layout = REPO / "dist" / "examples.unikraft" / name
        verify_blobs(layout)
        out = tmp_path / name
        run_cli("unikraft-extract", layout, "--plat", "qemu", "--arch", "x86_64", "--out", out)
        assert "Hello from a layerforge unikernel" in boot(out / "kernel", out / "initrd", timeout=60)


UNIKERNEL_BUILD = """
files(name="kernel", sources=["vmlinuz"])
files(name="rootfs", sources=["rootfs/**"])
unikraft_image(
    name="qemu",
    kernel="vmlinuz",
    arch="x86_64",
    plat="qemu",
    rootfs="rootfs",
    package_name="unikraft.org/boot:1.0",
    dependencies=[":kernel", ":rootfs"],
)
unikraft_image(
    name="all",
    kernel="vmlinuz",
    arch="amd64",
    plat="firecracker",
    platforms=[":qemu"],
    package_name="unikraft.org/boot:1.0",
    dependencies=[":kernel"],
)
"""


def test_unikraft_image_boots_and_gathers_platforms(tmp_path: Path) -> None:
    repo = PantsRepo(tmp_path / "repo")
    busybox_rootfs(repo.root / "uk" / "rootfs")
    (repo.root / "uk" / "vmlinuz").write_bytes(debian_kernel().read_bytes())
    repo.write("uk/BUILD", UNIKERNEL_BUILD)
    out = repo.run("package", "uk:all")
    assert out.returncode == 0, out.stderr
    layout = repo.root / "dist" / "uk" / "all"
    verify_blobs(layout)
    index = json.loads((layout / "blobs" / "sha256" / index_entry(layout, "latest")["digest"][7:]).read_bytes())
    assert [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]] == [
        ("fc", "x86_64"),
        ("qemu", "x86_64"),
    ]
    run_cli("unikraft-extract", layout, "--plat", "qemu", "--arch", "x86_64", "--out", tmp_path / "x")
    assert MARKER in boot(tmp_path / "x" / "kernel", tmp_path / "x" / "initrd")
    assert PantsRepo.executed(repo.run("package", "uk:all")) == [], "a re-package is answered by the cache"
    # `pants run` boots the repository's unikraft example in QEMU, its console on stdout.
    example = REPO / "examples" / "unikraft"
    shutil.copytree(example, repo.root / "ex", ignore=shutil.ignore_patterns("BUILD"))
    build = (example / "BUILD").read_text()
    repo.write("ex/BUILD", build[: build.index("\n# The root filesystem of the nix_oci_image example")])
    booted = repo.run("run", "ex:hello")
    assert booted.returncode == 0, booted.stderr
    assert "Hello from a layerforge unikernel" in booted.stdout, booted.stdout[-500:]
    bad = repo.run("--layerforge-unikraft-run-options=['--memory=lots']", "run", "ex:hello")
    assert bad.returncode == 2 and "layerforge unikraft-run: error: --memory: 'lots' is not a size" in bad.stderr
