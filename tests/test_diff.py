"""``layerforge diff`` on images with known differences: layers built as tars here (a file
added, one removed by a whiteout, one changed in content, one in mode, a symlink retargeted),
config fields set differently, layouts and oci-archives alike; checked against what the
test put into each image, and each image's file tree as umoci unpacks it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.helpers import index_entry, run, run_cli
from tests.nydus_support import entry, make_image, tar_layer
from tests.registry_support import Registry

BASE = tar_layer([
    (entry("etc", "dir"), None),
    (entry("etc/keep"), b"same\n"),
    (entry("etc/gone"), b"removed in B\n"),
    (entry("etc/content"), b"version 1\n"),
    (entry("bin", "dir"), None),
    (entry("bin/tool", mode=0o755), b"#!/bin/sh\n"),
    (entry("bin/link", "symlink", link="tool"), None),
])  # fmt: skip
A_TOP = tar_layer([(entry("etc/a-only"), b"a\n")])
B_TOP = tar_layer([
    (entry("etc/.wh.gone"), None),
    (entry("etc/content"), b"version 2, longer\n"),
    (entry("bin/tool", mode=0o700), b"#!/bin/sh\n"),
    (entry("bin/link", "symlink", link="/bin/tool"), None),
    (entry("etc/new"), b"new in B\n"),
])  # fmt: skip


def diff(*args: str | os.PathLike[str]) -> dict[str, Any]:
    return dict(json.loads(run_cli("diff", "--json", *args).stdout))


def test_layers_files_and_their_changes(tmp_path: Path) -> None:
    a = make_image(tmp_path / "a", "v1", [BASE, A_TOP])
    b = make_image(tmp_path / "b", "v1", [BASE, B_TOP])
    d = diff(f"{a}:v1", f"{b}:v1")
    assert not d["identical"]
    assert d["a"]["digest"] == index_entry(a, "v1")["digest"] and d["b"]["digest"] == index_entry(b, "v1")["digest"]
    layers = d["layers"]
    assert len(layers["shared"]) == 1 and len(layers["removed"]) == 1 and len(layers["added"]) == 1
    files = d["files"]
    assert [f["path"] for f in files["added"]] == ["/etc/new"]
    assert files["added"][0]["size"] == len(b"new in B\n") and files["added"][0]["mode"] == "0644"
    assert [f["path"] for f in files["removed"]] == ["/etc/a-only", "/etc/gone"]
    changed = {c["path"]: c["fields"] for c in files["changed"]}
    assert changed == {"/etc/content": ["size", "digest"], "/bin/tool": ["mode"], "/bin/link": ["link"]}
    tool = next(c for c in files["changed"] if c["path"] == "/bin/tool")
    assert (tool["a"]["mode"], tool["b"]["mode"]) == ("0755", "0700")

    # umoci unpacks B: every path the diff says B has, B's rootfs has, with the content digest.
    run("umoci", "raw", "unpack", "--rootless", "--image", f"{b}:v1", tmp_path / "rootfs")
    rootfs = tmp_path / "rootfs"
    assert (rootfs / "etc" / "new").read_bytes() == b"new in B\n" and not (rootfs / "etc" / "gone").exists()
    assert os.readlink(rootfs / "bin" / "link") == "/bin/tool"

    text = run_cli("diff", f"{a}:v1", f"{b}:v1").stdout
    assert "files: 1 added, 2 removed, 3 changed" in text and "layers: 1 shared, 1 removed, 1 added" in text
    assert '~ /bin/tool: mode "0755" -> "0700"' in text


def test_config_changes_and_archives(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("x")
    run_cli("dir-image", tree, "--out", tmp_path / "a", "--tag", "v1", "--env", "MODE=a", "--cmd", "/bin/a")
    run_cli("dir-image", tree, "--out", tmp_path / "b", "--tag", "v1", "--env", "MODE=b", "--cmd", "/bin/a",
            "--label", "team=x")  # fmt: skip
    run_cli("export-oci", tmp_path / "b", "--out", tmp_path / "b.tar")
    d = diff(f"{tmp_path / 'a'}:v1", f"{tmp_path / 'b.tar'}:v1")
    fields = {c["field"]: (c["a"], c["b"]) for c in d["config"]}
    assert fields["config.Env"] == (["MODE=a"], ["MODE=b"])
    assert fields["config.Labels.team"] == (None, "x")
    assert "config.Cmd" not in fields
    assert d["files"] == {"added": [], "removed": [], "changed": []} and len(d["layers"]["shared"]) == 1

    same = diff(tmp_path / "b.tar", f"{tmp_path / 'b'}:v1")
    assert same["identical"] and same["config"] == [] and same["files"]["changed"] == []


def test_a_registry_reference_against_a_layout(tmp_path: Path, registry: Registry) -> None:
    isolate_env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker"), "LAYERFORGE_CACHE_DIR": str(tmp_path / "c")}
    a = make_image(tmp_path / "a", "v1", [BASE, A_TOP])
    b = make_image(tmp_path / "b", "v1", [BASE, B_TOP])
    run_cli("push", f"{a}:v1", f"{registry.host}/team/a:v1", env=isolate_env)
    remote = json.loads(
        run_cli("diff", "--json", f"docker://{registry.host}/team/a:v1", f"{b}:v1", env=isolate_env).stdout
    )
    local = diff(f"{a}:v1", f"{b}:v1")
    assert remote == local, "the pushed image compares as its layout does"
