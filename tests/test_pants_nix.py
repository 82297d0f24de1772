"""nix_oci_image through real Pants runs: never a stale image. A Nix file importing a channel
from NIX_PATH, a flake, and store_paths targets, each packaged, changed and packaged again
(with pantsd, the way a developer runs Pants), every image run with podman + runc; `pants run`
with podman + runc as [layerforge].runtime (output, arguments, exit status, user, workdir,
environment, tags); a real BuildGrid remote cache shared by two machines with different
channels; store paths missing from a machine's Nix store realised through a real `file://`
binary cache; and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.buildgrid_support import buildgrid_server
from tests.helpers import blob_path, image_parts, index_entry, run_cli, tree_bytes, verify_blobs
from tests.nix_support import (
    CHANNEL_NIX,
    FLAKE,
    build,
    copy_to_cache,
    delete_from_store,
    nix_env,
    substituter_config,
)
from tests.pants_support import PantsRepo
from tests.runtime_support import Podman, assert_runs_as_configured, parse_probe, probe_script

CHANNEL_BUILD = """
nix_oci_image(
    name="app",
    nix_file="channel.nix",
    attr="app",
    copy_to_root_attrs=["tools", "app"],
    entrypoint=["/bin/show"],
    env={"PATH": "/bin"},
    user="app",
    workdir="/home/app",
    layering="per-path",
)
"""
FLAKE_BUILD = """
nix_oci_image(
    name="app",
    flake=".#app",
    copy_to_root_attrs=[".#tools", ".#app"],
    entrypoint=["/bin/hello"],
    env={"PATH": "/bin"},
    user="svc",
    uid=2000,
)
"""
SALT = uuid.uuid4().hex[:12]


def write_channel(channel: Path, value: str) -> None:
    channel.mkdir(parents=True, exist_ok=True)
    (channel / "value.nix").write_text(json.dumps(f"{value}-{SALT}") + "\n")


def channel_repo(root: Path) -> PantsRepo:
    repo = PantsRepo(root)
    repo.write("chan/channel.nix", CHANNEL_NIX.read_text())
    repo.write("chan/BUILD", CHANNEL_BUILD)
    return repo


def manifest_digest(repo: PantsRepo, target: str, ref: str = "latest") -> str:
    return str(image_parts(repo.root / "dist" / target, ref)[0]["digest"])


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    with Podman() as p:
        yield p


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PantsRepo]:
    """One build root for the module, run through one pantsd."""
    root = tmp_path_factory.mktemp("pants-nix")
    repo = channel_repo(root / "repo")
    shutil.copytree(FLAKE, repo.root / "flk")
    repo.write("flk/BUILD", FLAKE_BUILD)
    app, busybox = build("app"), build("busyboxPkg")
    repo.write(
        "paths/BUILD",
        f'nix_oci_image(name="app", store_paths=["{app}"], copy_to_root=["{busybox}"], '
        f'entrypoint=["{app}/bin/hello"], workdir="/nix", env={{"GREETING": "hi"}})\n'
        # For `pants run`: a shell image with an account, a repository and two tags.
        f'nix_oci_image(name="sh", store_paths=["{busybox}"], copy_to_root=["{busybox}"], entrypoint=["/bin/sh"], '
        'user="app", workdir="/home/app", env={"GREETING": "hi", "PATH": "/bin"}, repository="lf/{name}", '
        'image_tags=["1.0", "latest"])\n',
    )
    values = {
        "{flake}": (FLAKE / "flake.nix").read_text(),
        "{flakedir}": str(FLAKE),
        "{app}": app,
        "{etc}": build("etc"),
    }
    for i, (files, _) in enumerate(BAD_CASES):
        for path, template in files.items():
            content = template
            for key, value in values.items():
                content = content.replace(key, value)
            repo.write(f"b{i}/{path}", content)
    yield repo
    repo.stop_pantsd()


def test_channel_on_nix_path_is_never_stale(repo: PantsRepo, tmp_path: Path, podman: Podman) -> None:
    channel = tmp_path / "channel"
    write_channel(channel, "one")
    env = {"NIX_PATH": f"layerforge-chan={channel}"}
    first = repo.run("package", "chan:app", pantsd=True, env=env)
    assert first.returncode == 0, first.stderr
    layout = repo.root / "dist" / "chan" / "app"
    one = manifest_digest(repo, "chan/app")
    assert one in first.stderr
    assert podman.run(layout, "latest").stdout == f"channel value: one-{SALT}\n"
    _, _, config = image_parts(layout)
    probe = podman.probe(layout, "latest", "/bin/busybox")
    assert_runs_as_configured(probe, config, uid=1000, gid=1000, home="/home/app")
    built = tree_bytes(layout)

    again = repo.run("package", "chan:app", pantsd=True, env=env)
    assert again.returncode == 0, again.stderr
    assert PantsRepo.executed(again) == [], "nothing changed: no plan, layer or assembly runs"
    # One evaluation for the image's attribute and its copy-to-root attributes (see
    # nix/shared_evaluation.py), on every Pants run, pantsd or not
    assert len(PantsRepo.evaluated(again)) == 1, "the evaluation runs on every Pants run, pantsd or not"
    assert tree_bytes(layout) == built

    write_channel(channel, "two")
    changed = repo.run("package", "chan:app", pantsd=True, env=env)
    assert changed.returncode == 0, changed.stderr
    ran = PantsRepo.executed(changed)
    assert any(r.startswith("Plan the layers of chan:app") for r in ran), ran
    # The root layer, and the small app's batch (two when the new path moves a batch's cut:
    # boundaries follow the store paths, see layer_jobs.batch_jobs); nothing else
    assert sum(r.startswith("Build layer") for r in ran) in (2, 3), f"the app's batch and the root layer: {ran}"
    two = manifest_digest(repo, "chan/app")
    assert two != one, "the channel changed: a new image"
    assert podman.run(layout, "latest").stdout == f"channel value: two-{SALT}\n"


def test_flake_change_gives_new_image_and_unchanged_is_a_cache_hit(repo: PantsRepo, podman: Podman) -> None:
    first = repo.run("package", "flk:app", pantsd=True)
    assert first.returncode == 0, first.stderr
    layout = repo.root / "dist" / "flk" / "app"
    one = manifest_digest(repo, "flk/app")
    assert podman.run(layout, "latest").stdout == (FLAKE / "greeting.txt").read_text()
    _, _, config = image_parts(layout)
    assert_runs_as_configured(podman.probe(layout, "latest", "/bin/busybox"), config, uid=2000, gid=2000,
                              home="/home/svc")  # fmt: skip

    same = repo.run("package", "flk:app", pantsd=True)
    assert same.returncode == 0, same.stderr
    assert PantsRepo.executed(same) == [], "unchanged lock and files: a cache hit"
    assert manifest_digest(repo, "flk/app") == one

    repo.write("flk/greeting.txt", "a greeting the flake reads\n")
    changed = repo.run("package", "flk:app", pantsd=True)
    assert changed.returncode == 0, changed.stderr
    assert manifest_digest(repo, "flk/app") != one
    assert podman.run(layout, "latest").stdout == "a greeting the flake reads\n"
    assert not (repo.root / "flk" / "flake.lock").exists(), "no lock file is written"


SHARED_FLAKE_BUILD = """
nix_oci_image(name="a", flake=".#app", copy_to_root_attrs=[".#tools", ".#app"], entrypoint=["/bin/hello"])
nix_oci_image(name="b", flake=".", copy_to_root_attrs=[".#tools", "."], entrypoint=["/bin/hello"], user="svc", uid=2000)
"""


def test_images_over_one_flake_share_one_evaluation(repo: PantsRepo, podman: Podman) -> None:
    """Two images reading one flake: one `nix eval` of all their outputs (after the flake's
    metadata and Nix's system), giving each exactly the derivations its own evaluation gives:
    alone, the image's layers and assembly are cache hits."""
    shutil.copytree(FLAKE, repo.root / "flk2")
    repo.write("flk2/BUILD", SHARED_FLAKE_BUILD)
    # Without pantsd: a BUILD file written just before a run is the one it reads.
    both = repo.run("package", "flk2::")
    assert both.returncode == 0, both.stderr
    evaluated = PantsRepo.evaluated(both)
    assert [e for e in evaluated if "nix eval" in e] == [
        "Evaluate the Nix derivations of flk2:a (nix eval of 3 outputs of path:./flk2 for the images that read it)"
    ] or [e.replace("flk2:b", "flk2:a") for e in evaluated if "nix eval" in e] == [
        "Evaluate the Nix derivations of flk2:a (nix eval of 3 outputs of path:./flk2 for the images that read it)"
    ], evaluated
    assert len(evaluated) == 3, f"the metadata, the system and the outputs: {evaluated}"
    a, b = manifest_digest(repo, "flk2/a"), manifest_digest(repo, "flk2/b")
    assert podman.run(repo.root / "dist" / "flk2" / "b", "latest").stdout == (FLAKE / "greeting.txt").read_text()

    repo.write("flk2/BUILD", SHARED_FLAKE_BUILD.splitlines()[1] + "\n")
    alone = repo.run("package", "flk2:a")
    assert alone.returncode == 0, alone.stderr
    assert sorted(set(PantsRepo.evaluated(alone))) == [
        "Evaluate the Nix derivations of flk2:a (nix eval path:./flk2#app)",
        "Evaluate the Nix derivations of flk2:a (nix eval path:./flk2#tools)",
    ]
    # It plans alone now (it was planned with b): the same derivations make the same plan, so
    # its layers and its assembly are cache hits.
    assert PantsRepo.executed(alone) == ["Plan the layers of flk2:a"]
    assert manifest_digest(repo, "flk2/a") == a != b

    # An image asking for an output the flake lacks fails the shared evaluation: each image
    # then evaluates alone, and the error names the image and its field.
    repo.write("flk2/BUILD", SHARED_FLAKE_BUILD + 'nix_oci_image(name="bad", flake=".#nope")\n')
    failed = repo.run("package", "flk2::")
    assert failed.returncode != 0
    assert "The `flake` field of flk2:bad" in failed.stderr and "nope" in failed.stderr, failed.stderr[-3000:]
    assert "flk2:a" not in failed.stderr.split("Exception encountered")[-1], "only the broken image fails"


def test_store_paths_target_packages_and_runs(repo: PantsRepo, podman: Podman) -> None:
    out = repo.run("package", "paths:app", pantsd=True)
    assert out.returncode == 0, out.stderr
    layout = repo.root / "dist" / "paths" / "app"
    verify_blobs(layout)
    assert podman.run(layout, "latest").stdout == "hello from libgreet\napp 1.0\n"
    _, _, config = image_parts(layout)
    assert_runs_as_configured(podman.probe(layout, "latest", "/bin/busybox"), config)
    assert PantsRepo.evaluated(out) == [], "store paths need no evaluation"


def pants_run(repo: PantsRepo, podman: Podman, *args: str) -> subprocess.CompletedProcess[str]:
    """`pants ARGS` with podman + runc on this storage as [layerforge]'s runtime."""
    env = podman.pants_env()
    return repo.run(*args, pantsd=True, env=env)


def test_run_prints_the_images_output(repo: PantsRepo, podman: Podman) -> None:
    out = pants_run(repo, podman, "run", "paths:app")
    assert (out.returncode, out.stdout) == (0, "hello from libgreet\napp 1.0\n"), out.stderr
    assert "localhost/app:latest" in podman.image_names(), "the default repository is the target's name"


def test_run_passes_arguments_and_returns_the_exit_status(repo: PantsRepo, podman: Podman) -> None:
    out = pants_run(repo, podman, "run", "paths:sh", "--", "-c", 'echo "$#:$1:$2"; exit 3', "sh", "a b", "--x")
    assert (out.returncode, out.stdout) == (3, "2:a b:--x\n"), out.stderr
    names = podman.image_names()
    assert names["localhost/lf/sh:1.0"] == names["localhost/lf/sh:latest"], names


def test_run_has_the_images_user_workdir_and_env(repo: PantsRepo, podman: Podman) -> None:
    out = pants_run(repo, podman, "run", "paths:sh", "--", "-c", probe_script("/bin/busybox"))
    assert out.returncode == 0, out.stderr
    inspect = subprocess.run([*podman.base_argv(), "image", "inspect", "--format", "{{json .Config}}", "lf/sh:1.0"],
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    config = {"config": json.loads(inspect.stdout)}
    assert config["config"]["User"] == "app" and "GREETING=hi" in config["config"]["Env"], config
    probe = parse_probe(out.stdout)
    assert_runs_as_configured(probe, config, uid=1000, gid=1000, home="/home/app")
    assert probe.env["GREETING"] == "hi"


def test_a_runtime_that_is_not_there_is_one_line(repo: PantsRepo, podman: Podman) -> None:
    out = pants_run(repo, podman, "--layerforge-runtime=/nonexistent/docker", "run", "paths:app")
    assert out.returncode == 1, out.stderr
    assert "layerforge run: error: [layerforge].runtime: '/nonexistent/docker' is not installed" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_runtime_that_cannot_start_the_container_is_one_line_naming_the_option(
    repo: PantsRepo, podman: Podman
) -> None:
    """runc refusing a limit the host cannot give (what podman's defaults met on this host): one
    line naming podman, the image and the `[layerforge]` option that fixes it."""
    env = podman.pants_env()
    flags = [f for f in json.loads(env["PANTS_LAYERFORGE_RUN_OPTIONS"]) if not f.startswith("--ulimit")]
    env["PANTS_LAYERFORGE_RUN_OPTIONS"] = json.dumps([*flags, "--ulimit=nofile=1048576:1048576"])
    out = repo.run("run", "paths:app", pantsd=True, env=env)
    assert out.returncode in (125, 126, 127), out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("layerforge run: ")]
    assert line.startswith("layerforge run: podman could not run app:latest (exit "), line
    assert line.endswith('e.g. [layerforge].run_options = ["--ulimit=nofile=1024:1024"]'), line
    without = repo.run("run", "paths:app", pantsd=True, env={**env, "PANTS_LAYERFORGE_RUN_OPTIONS": json.dumps(flags)})
    assert (without.returncode, without.stdout) == (0, "hello from libgreet\napp 1.0\n"), without.stderr


def test_export_docker_of_a_pants_layout_is_tagged_repository_tag(repo: PantsRepo, podman: Podman,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    out = repo.run("package", "paths:sh", pantsd=True)
    assert out.returncode == 0, out.stderr
    layout = repo.root / "dist" / "paths" / "sh"
    assert index_entry(layout, "1.0")["annotations"]["io.containerd.image.name"] == "lf/sh:1.0"
    archive = tmp_path / "sh.tar"
    exported = run_cli("export-docker", layout, "--out", archive)
    assert exported.stdout.split()[-1] == "lf/sh:1.0"
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["lf/sh:1.0"]
    loaded = subprocess.run([*podman.base_argv(), "load", "--quiet", "--input", str(archive)], capture_output=True,
                            text=True, timeout=300, check=False)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert "localhost/lf/sh:1.0" in podman.image_names()


STALE_LOCK = '{"nodes": {"root": {}}, "root": "root", "version": 7}\n'
GONE = "/nix/store/" + "z" * 32 + "-gone-1.0"
BAD_CASES: list[tuple[dict[str, str], list[str]]] = [
    (
        {"flake.nix": "{flake}", "BUILD": 'nix_oci_image(name="x", flake=".#nope")'},
        ["The `flake` field of {addr}", "does not provide attribute", "nope"],
    ),
    (
        {
            "flake.nix": '{ inputs.other.url = "path:{flakedir}"; outputs = { self, other }: { }; }',
            "flake.lock": STALE_LOCK,
            "BUILD": 'nix_oci_image(name="x", flake=".#app")',
        },
        ["The `flake` field of {addr}", "requires lock file changes", "--no-update-lock-file"],
    ),
    (
        {"flake.nix": "{flake}", "a.nix": "{}", "BUILD": 'nix_oci_image(name="x", flake=".#app", nix_file="a.nix")'},
        ["{addr} needs exactly one of `nix_file`, `flake` and `store_paths` (it has `nix_file` and `flake`)"],
    ),
    (
        {"BUILD": f'nix_oci_image(name="x", store_paths=["{GONE}"])'},
        ["The `store_paths` field of {addr}", GONE, "not in the local Nix store", "substituters"],
    ),
    (
        {"flake.nix": "{flake}", "BUILD": 'nix_oci_image(name="x", flake=".#lib.greeting")'},
        ["The `flake` field of {addr}", "not a derivation"],
    ),
    (
        {"BUILD": 'nix_oci_image(name="x", flake="github:owner/repo#app")'},
        ["The `flake` field of {addr}", "only local flakes"],
    ),
    (
        {"flake.nix": "{flake}", "BUILD": 'nix_oci_image(name="x", flake=".#app", copy_to_root_attrs=["../up#x"])'},
        ["The `copy_to_root_attrs` field of {addr}", "BUILD file's directory or below"],
    ),
    (
        {
            "flake.nix": "{flake}",
            "greeting.txt": "hi\n",
            "BUILD": 'nix_oci_image(name="x", flake=".#app", flake_sources=["greeting.txt"])',
        },
        ["The `flake_sources` field of {addr} does not give b{i}/flake.nix"],
    ),
    (
        {"flake.nix": "{flake}", "BUILD": 'nix_oci_image(name="x", flake=".#app", uid=5)'},
        ["The `uid` field of {addr} needs `user` (a name)"],
    ),
    (
        {
            "flake.nix": "{flake}",
            "greeting.txt": "hi\n",
            "BUILD": 'nix_oci_image(name="x", flake=".#app", copy_to_root_attrs=[".#tools"], entrypoint=["/bin/nope"])',
        },
        ["The `entrypoint` field of {addr}: '/bin/nope' does not exist in the image"],
    ),
    (
        {"BUILD": 'nix_oci_image(name="x", store_paths=["{app}"], copy_to_root=["{etc}"], user="nobody")'},
        ["The `user` field of {addr}: 'nobody' is not in the image's /etc/passwd"],
    ),
]


@pytest.mark.parametrize("i", range(len(BAD_CASES)))
def test_bad_input_is_one_line_naming_target_and_field(repo: PantsRepo, i: int) -> None:
    needles = BAD_CASES[i][1]
    addr = f"b{i}:x"
    out = repo.run("package", addr, pantsd=True)
    assert out.returncode != 0, out.stderr
    wanted = [n.replace("{addr}", addr).replace("{i}", str(i)) for n in needles]
    lines = [line for line in out.stderr.splitlines() if wanted[0] in line]
    assert lines, f"{wanted[0]!r} missing from:\n{out.stderr}"
    for needle in wanted[1:]:
        assert needle in lines[0], f"{needle!r} not on the error line {lines[0]!r}"
    assert "Traceback" not in out.stderr
    assert not (repo.root / "dist" / f"b{i}").exists(), "nothing is written"


def layer_of(layout: Path, manifest: dict[str, object], store_path: str) -> str:
    """The digest of the layer holding ``store_path``."""
    for layer in manifest["layers"]:  # type: ignore[attr-defined]
        with tarfile.open(blob_path(layout, layer["digest"])) as tar:
            if store_path.lstrip("/") in tar.getnames():
                return str(layer["digest"])
    raise AssertionError(f"{store_path} is in no layer")


def test_remote_cache_is_keyed_by_what_nix_evaluates(tmp_path: Path, podman: Podman) -> None:
    """Machine A and machine B (other build roots, other local stores, one BuildGrid): B with a
    different channel builds its own image; with A's channel it reuses A's; a layer the cache
    lost is rebuilt from store paths realised through the substituter, or fails cleanly."""
    channel, cache = tmp_path / "channel", tmp_path / "binary-cache"
    # The same NIX_CONFIG on every machine (it is part of every process's key).
    env = {"NIX_PATH": f"layerforge-chan={channel}", "NIX_CONFIG": substituter_config(cache)}
    a, b = channel_repo(tmp_path / "a"), channel_repo(tmp_path / "b")
    with buildgrid_server(tmp_path / "buildgrid") as address:
        remote = ["--remote-cache-read", "--remote-cache-write", f"--remote-store-address={address}",
                  "--remote-instance-name="]  # fmt: skip

        def package(repo: PantsRepo, machine: str) -> subprocess.CompletedProcess[str]:
            # A fresh local store (process cache) for every run; each build root keeps its named
            # caches (pex, interpreters), as a CI machine does: they hold no process results.
            return repo.run(*remote, "package", "chan:app", store=tmp_path / f"store-{machine}", env=env)

        write_channel(channel, "a")
        on_a = package(a, "a")
        assert on_a.returncode == 0, on_a.stderr
        digest_a, built_a = manifest_digest(a, "chan/app"), tree_bytes(a.root / "dist" / "chan" / "app")

        write_channel(channel, "b")
        on_b = package(b, "b")
        assert on_b.returncode == 0, on_b.stderr
        assert any(r.startswith("Plan the layers") for r in PantsRepo.executed(on_b)), "B does not get A's plan"
        assert manifest_digest(b, "chan/app") != digest_a
        assert podman.run(b.root / "dist" / "chan" / "app", "latest").stdout == f"channel value: b-{SALT}\n"

        write_channel(channel, "a")
        shutil.rmtree(b.root / "dist")
        reuse = package(b, "c")
        assert reuse.returncode == 0, reuse.stderr
        assert PantsRepo.executed(reuse) == [], "the same channel as A: everything from the remote cache"
        assert tree_bytes(b.root / "dist" / "chan" / "app") == built_a

        # The cache lost the app's layer blob; this machine's Nix store lacks the app.
        app = subprocess.run(["nix-build", str(a.root / "chan" / "channel.nix"), "-A", "app", "--no-out-link"],
                             capture_output=True, text=True, env={**nix_env(), **env}, timeout=300,
                             check=True).stdout.strip()  # fmt: skip
        _, manifest, _ = image_parts(a.root / "dist" / "chan" / "app")
        layer = layer_of(a.root / "dist" / "chan" / "app", manifest, app).split(":")[1]
        (tmp_path / "buildgrid" / "cas" / "cas" / "objects" / layer[:2] / layer[2:]).unlink()
        copy_to_cache(cache, app)
        delete_from_store(app)
        shutil.rmtree(b.root / "dist")
        realised = package(b, "d")
        assert realised.returncode == 0, realised.stderr
        ran = PantsRepo.executed(realised)
        assert not any(r.startswith("Plan") for r in ran) and sum(r.startswith("Build layer") for r in ran) == 1, ran
        assert Path(app).is_dir(), "the layer process realised the app from the substituter"
        assert tree_bytes(b.root / "dist" / "chan" / "app") == built_a

        # Lost again, and no substituter has it: one line naming the path and the target.
        (tmp_path / "buildgrid" / "cas" / "cas" / "objects" / layer[:2] / layer[2:]).unlink()
        delete_from_store(app)
        shutil.rmtree(cache)
        shutil.rmtree(b.root / "dist")
        failed = package(b, "e")
        assert failed.returncode != 0
        line = next((x for x in failed.stderr.splitlines() if "The `nix_file` field of chan:app" in x), "")
        assert app in line and "not in the local Nix store" in line, failed.stderr
        assert not (b.root / "dist").exists(), "nothing is written"
