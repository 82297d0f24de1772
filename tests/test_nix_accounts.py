"""Non-root nix-images (`--user NAME[:GROUP]`, `--uid`, `--gid`), run with podman + runc: the
root layer gets /etc/passwd, /etc/group and a home directory owned by the user when the image
has no /etc/passwd; an image that has one must list the user; `--perms` hands store paths to
the user by name."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, blob_path, image_parts
from tests.nix_support import build, nix_image
from tests.runtime_support import Podman, assert_runs_as_configured

pytestmark = pytest.mark.usefixtures("nix_cli_env")


def members(layout: Path, digest: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(blob_path(layout, digest)) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def file_text(layout: Path, digest: str, name: str) -> str:
    with tarfile.open(blob_path(layout, digest)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read().decode()


def test_user_without_passwd_gets_an_account(tmp_path: Path, podman: Podman) -> None:
    app, busybox = build("app"), build("busyboxPkg")
    out = tmp_path / "img"
    nix_image(
        "--store-path", app, "--copy-to-root", busybox, "--user", "app", "--uid", "1234", "--gid", "2345",
        "--perms", f"{app}/bin(/.*)?=0750:app:app", "--workdir", "/home/app", "--env", "PATH=/bin",
        "--entrypoint", f"{app}/bin/hello", "--out", out,
    )  # fmt: skip
    _, manifest, config = image_parts(out)
    assert config["config"]["User"] == "app"
    root = manifest["layers"][-1]["digest"]
    entries = members(out, root)
    assert file_text(out, root, "etc/passwd") == "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n"
    assert file_text(out, root, "etc/group") == "root:x:0:\napp:x:2345:\n"
    home = entries["home/app"]
    assert home.isdir() and (home.uid, home.gid, home.mode) == (1234, 2345, 0o755)
    assert all((m.uid, m.gid) == (0, 0) for n, m in entries.items() if n != "home/app")
    assert entries["bin/sh"].issym(), "the copy-to-root entries share the root layer"
    assert config["history"][-1]["created_by"] == "layerforge nix-image: copy-to-root, user app"
    hello = next(m for d in manifest["layers"][:-1] for n, m in members(out, d["digest"]).items()
                 if n == f"{app}/bin/hello".lstrip("/"))  # fmt: skip
    assert (hello.uid, hello.gid, hello.mode) == (1234, 2345, 0o750), "--perms hands the path to the user"

    assert podman.run(out, "latest").stdout == "hello from libgreet\napp 1.0\n"
    probe = podman.probe(out, "latest", f"{busybox}/bin/busybox")
    assert_runs_as_configured(probe, config, uid=1234, gid=2345, home="/home/app")
    made = podman.run(out, "latest", "-c", "echo data > $HOME/f && cat $HOME/f && id -un", entrypoint="/bin/sh")
    assert made.stdout == "data\napp\n", "the user owns its home directory"


def test_defaults_and_group_name(tmp_path: Path, podman: Podman) -> None:
    busybox = build("busyboxPkg")
    out = tmp_path / "img"
    nix_image("--store-path", busybox, "--copy-to-root", busybox, "--user", "svc:staff", "--out", out)
    _, manifest, config = image_parts(out)
    root = manifest["layers"][-1]["digest"]
    assert file_text(out, root, "etc/passwd").endswith("svc:x:1000:1000::/home/svc:/bin/sh\n")
    assert file_text(out, root, "etc/group") == "root:x:0:\nstaff:x:1000:\n"
    probe = podman.probe(out, "latest", f"{busybox}/bin/busybox")
    assert_runs_as_configured(probe, config, uid=1000, gid=1000, home="/home/svc")
    # Without copy-to-root the account alone makes the root layer.
    only = tmp_path / "only"
    nix_image("--store-path", busybox, "--user", "svc", "--uid", "4000", "--out", only)
    _, manifest, config = image_parts(only)
    assert sorted(members(only, manifest["layers"][-1]["digest"])) == [
        "etc", "etc/group", "etc/passwd", "home", "home/svc"
    ]  # fmt: skip
    probe = podman.probe(only, "latest", f"{busybox}/bin/busybox")
    assert_runs_as_configured(probe, config, uid=4000, gid=4000, home="/home/svc")


def test_image_with_passwd_must_list_the_user(tmp_path: Path, podman: Podman) -> None:
    app, busybox, etc = build("app"), build("busyboxPkg"), build("etc")
    out = tmp_path / "img"
    common = ["--store-path", app, "--copy-to-root", busybox, "--copy-to-root", etc]
    nix_image(*common, "--user", "app", "--uid", "1000", "--out", out)
    _, manifest, config = image_parts(out)
    root = members(out, manifest["layers"][-1]["digest"])
    assert root["etc/passwd"].issym(), "the image's own /etc/passwd is kept, nothing generated"
    assert "home" not in root
    probe = podman.probe(out, "latest", f"{busybox}/bin/busybox")
    assert_runs_as_configured(probe, config, uid=1000, gid=1000, home="/home/app")

    # A base image that has the account: the user is found there.
    child = tmp_path / "child"
    nix_image("--store-path", build("libgreet"), "--from-image", f"{out}:latest", "--user", "app:app", "--out", child)
    _, child_manifest, child_config = image_parts(child)
    assert len(child_manifest["layers"]) == len(manifest["layers"]) + 1, "no root layer of its own"
    assert_runs_as_configured(podman.probe(child, "latest", f"{busybox}/bin/busybox"), child_config, uid=1000,
                              gid=1000)  # fmt: skip

    bad = [
        (["--user", "nobody"], ["--user", "'nobody' is not in the image's /etc/passwd"]),
        (["--user", "app", "--uid", "5"], ["--uid", "5 is not the uid of 'app'", "(1000)"]),
        (["--user", "app:wheel"], ["--user", "group 'wheel' is not in the image's /etc/group"]),
        (["--user", "app", "--gid", "7"], ["--gid", "7 is not the gid"]),
    ]
    for args, needles in bad:
        proc = nix_image(*common, *args, "--out", tmp_path / "never", check=False)
        assert_one_line_error(proc, *needles)
        assert proc.returncode == 2 and not (tmp_path / "never").exists()
    proc = nix_image("--store-path", build("libgreet"), "--from-image", f"{out}:latest", "--user", "ghost",
                     "--out", tmp_path / "never", check=False)  # fmt: skip
    assert_one_line_error(proc, "--user", "'ghost' is not in the image's /etc/passwd")


def test_bad_accounts(tmp_path: Path) -> None:
    busybox = build("busyboxPkg")
    cases = [
        (["--uid", "1000"], ["--uid", "needs --user NAME"]),
        (["--user", "1000:1000", "--gid", "5"], ["--gid", "needs --user NAME"]),
        (["--user", "app", "--uid", "0"], ["--uid", "uid 0 is root's and only root's"]),
        (["--user", "root", "--uid", "5"], ["--uid", "uid 5 for user 'root'"]),
        (["--user", "app", "--uid", str(2**32)], ["--uid", "outside 0..4294967294"]),
        (["--user", "bad/name"], ["--user", "'bad/name' is not a user name"]),
        (["--user", "app:x y"], ["--user", "'x y' is not a group name"]),
        (["--user", "app", "--perms", f"{busybox}/bin=0755:other:app"], ["--perms", "'other' is not the image's user"]),
        (["--perms", f"{busybox}/bin=0755:app:app"], ["--perms", "'app' is not the image's user"]),
    ]
    for args, needles in cases:
        proc = nix_image("--store-path", busybox, *args, "--out", tmp_path / "never", check=False)
        assert_one_line_error(proc, *needles)
        assert proc.returncode == 2 and not (tmp_path / "never").exists()
