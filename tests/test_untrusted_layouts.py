"""Layouts, blobs and arguments made by someone hostile: every blob that enters a layout is
verified, only regular files are read as blobs and never past their descriptor's size,
wrong JSON types and damaged layers are one-line errors naming what is wrong, names stay
inside their roots, and nothing half-written is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import assert_one_line_error, layerforge_bin, run_cli, verify_blobs
from tests.hostile_support import (
    M,
    make_canary,
    put,
    sha,
    tar_bytes,
    tree_state,
    write_layout,
)
from tests.kernel_support import elf_kernel
from tests.nix_support import NIX_CONFIG, build, layer_job, store_layer
from tests.nydus_support import entry, make_image, tar_layer
from tests.runtime_support import Podman

TRUE = [M("dir", "bin/", mode=0o755), M("file", "bin/true", b"#!/bin/sh\n" + b"x" * 4000, mode=0o755)]
KERNEL_ARGS = ("--arch", "x86_64", "--plat", "qemu")


def nix_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "NIX_CONFIG": NIX_CONFIG, "LAYERFORGE_CACHE_DIR": str(tmp_path / "cache")}


def flip_byte(path: Path, offset: int) -> None:
    """Change one byte in place (same size): the blob no longer matches its digest."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def scratch_left(*dirs: Path) -> list[str]:
    """Scratch names layerforge leaves when interrupted or failing (none may remain)."""
    out = []
    for d in dirs:
        if d.is_dir():
            out += [str(p) for p in d.rglob("*") if p.name.startswith((".layerforge-", "initrd-", "layerforge-"))]
    return out


# -- 2. blobs imported from another layout are verified ----------------------------------------


@pytest.mark.parametrize(
    ("flip", "fmt", "message"),
    [
        (1024 + 100, ["--format", "oci"], "does not match its digest"),  # inside bin/true's data: still a valid tar
        (1024 + 100, ["--format", "docker-archive", "--no-cache"], "does not match its digest"),
    ],
)
def test_corrupt_base_layer_is_not_linked_into_a_nix_image(
    tmp_path: Path, flip: int, fmt: list[str], message: str
) -> None:
    base = write_layout(tmp_path / "base", [tar_bytes(TRUE)])
    flip_byte(base.blob(base.layers[0]), flip)
    out = tmp_path / "out"
    proc = run_cli("nix-image", "--store-path", build("app"), "--from-image", f"{base.root}:latest", "--out", out,
                   *fmt, check=False, env=nix_env(tmp_path))  # fmt: skip
    assert_one_line_error(proc, base.layers[0], message)
    assert not out.exists()
    assert not list(tmp_path.glob(".layerforge-*"))


def test_corrupt_included_package_is_refused(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "app_qemu-x86_64", payload=b"kernel\n" * 1000)
    inc = tmp_path / "inc"
    run_cli("unikraft-image", "--kernel", kernel, *KERNEL_ARGS, "--name", "unikraft.org/app:1", "--out", inc)
    index = json.loads((inc / "index.json").read_bytes())["manifests"][0]["digest"]
    nested = json.loads((inc / "blobs" / "sha256" / index[7:]).read_bytes())
    manifest = json.loads((inc / "blobs" / "sha256" / nested["manifests"][0]["digest"][7:]).read_bytes())
    layer = manifest["layers"][0]["digest"]
    flip_byte(inc / "blobs" / "sha256" / layer[7:], 2000)
    out = tmp_path / "out"
    fc = elf_kernel(tmp_path / "app_fc-x86_64", payload=b"fc\n")
    proc = run_cli("unikraft-image", "--kernel", fc, "--arch", "x86_64", "--plat", "fc", "--include", inc,
                   "--name", "unikraft.org/app:1", "--out", out, check=False)  # fmt: skip
    assert_one_line_error(proc, layer, "does not match its digest")
    assert not out.exists()


def test_corrupt_chunk_dict_blob_is_refused(tmp_path: Path) -> None:
    files = [(entry(f"usr/lib/lib{i}.so"), os.urandom(300_000)) for i in range(3)]
    one = make_image(tmp_path / "one", "v1", [tar_layer(files)])
    two = make_image(tmp_path / "two", "v1", [tar_layer([*files, (entry("app"), b"app\n" * 1000)])])
    dict_out = tmp_path / "dict"
    run_cli("nydus-image", f"{one}:v1", "--out", dict_out)
    blobs = [p for p in (dict_out / "blobs" / "sha256").iterdir() if p.stat().st_size > 500_000]
    assert len(blobs) == 1
    flip_byte(blobs[0], blobs[0].stat().st_size // 2)
    out = tmp_path / "out"
    proc = run_cli("nydus-image", f"{two}:v1", "--out", out, "--chunk-dict", f"{dict_out}:v1", check=False)
    assert_one_line_error(proc, blobs[0].name, "does not match its digest")
    assert not out.exists()


def test_blob_longer_than_its_descriptor_is_refused(tmp_path: Path) -> None:
    base = write_layout(tmp_path / "base", [tar_bytes(TRUE)])
    manifest = json.loads(base.blob(base.manifest).read_bytes())
    manifest["layers"][0]["size"] -= 512  # the blob is longer than the descriptor says
    body = json.dumps(manifest).encode()
    digest = put(base.root, body)
    index = json.loads((base.root / "index.json").read_bytes())
    index["manifests"][0].update(digest=digest, size=len(body))
    (base.root / "index.json").write_text(json.dumps(index))
    kernel = elf_kernel(tmp_path / "k")
    for args in (["export-docker", base.root, "--out", tmp_path / "a.tar"],
                 ["unikraft-image", "--kernel", kernel, *KERNEL_ARGS, "--rootfs-image", base.root, "--out",
                  tmp_path / "pkg"],
                 ["inspect", base.root]):  # fmt: skip
        proc = run_cli(*args, check=False)
        assert_one_line_error(proc, base.layers[0])
        assert "descriptor says" in proc.stderr
    assert not (tmp_path / "a.tar").exists() and not (tmp_path / "pkg").exists()


# -- 4. FIFOs and devices are never read as blobs; SIGTERM still ends everything ----------------


def bounded_run(args: list[Any], *, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, bool]:
    """Run the command; if it has not ended after 30 s, send SIGTERM (then SIGKILL after
    another 30 s). Returns (process, stderr, whether it ended on its own)."""
    proc = subprocess.Popen([layerforge_bin(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    try:
        _, err = proc.communicate(timeout=30)
        return proc, err, True
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    return proc, err, False


def _special_blob(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize(
    "command", ["inspect", "export-docker", "rootfs-image", "include", "nix-from-image", "nydus", "index-json"]
)
def test_special_files_as_blobs_fail_at_once(tmp_path: Path, kind: str, command: str) -> None:
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)])
    kernel = elf_kernel(tmp_path / "k")
    env = None
    target = image.blob(image.layers[0])
    if command == "inspect":
        target = image.blob(image.manifest)
        args: list[Any] = ["inspect", image.root]
    elif command == "index-json":
        target = image.root / "index.json"
        args = ["inspect", image.root]
    elif command == "export-docker":
        target = image.blob(image.config)
        args = ["export-docker", image.root, "--out", tmp_path / "out.tar"]
    elif command == "rootfs-image":
        args = ["unikraft-image", "--kernel", kernel, *KERNEL_ARGS, "--rootfs-image", image.root, "--out",
                tmp_path / "out"]  # fmt: skip
    elif command == "include":
        pkg = tmp_path / "pkg"
        run_cli("unikraft-image", "--kernel", kernel, *KERNEL_ARGS, "--name", "unikraft.org/k:1", "--out", pkg)
        nested = json.loads((pkg / "index.json").read_bytes())["manifests"][0]["digest"]
        child = json.loads((pkg / "blobs" / "sha256" / nested[7:]).read_bytes())["manifests"][0]["digest"]
        layer = json.loads((pkg / "blobs" / "sha256" / child[7:]).read_bytes())["layers"][0]["digest"]
        target = pkg / "blobs" / "sha256" / layer[7:]
        other = elf_kernel(tmp_path / "k2", payload=b"other")
        args = ["unikraft-image", "--kernel", other, "--arch", "x86_64", "--plat", "fc",
                "--include", pkg, "--name", "unikraft.org/k:1", "--out", tmp_path / "out"]  # fmt: skip
    elif command == "nix-from-image":
        args = ["nix-image", "--store-path", build("app"), "--from-image", image.root, "--out", tmp_path / "out"]
        env = nix_env(tmp_path)
    else:
        args = ["nydus-image", image.root, "--out", tmp_path / "out"]
    _special_blob(target, kind)
    # A temporary directory of the test's own (other tests run at the same time).
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc, err, ended = bounded_run(args, env={**(env or os.environ), "TMPDIR": str(tmpdir)})
    assert ended, f"{command} hung on a {kind} blob (SIGTERM gave {proc.returncode}: {err})"
    assert proc.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tar").exists()
    assert not scratch_left(tmp_path), scratch_left(tmp_path)
    assert not list(tmpdir.iterdir()), list(tmpdir.iterdir())
    assert not list(Path("/tmp").glob(f".layerforge-*-{proc.pid}-*"))


@pytest.mark.parametrize("value", ["100000", "-1", "257", "many"])
@pytest.mark.parametrize("command", ["dir-image", "nix-image", "nydus-image", "nix-layer"])
def test_threads_are_bounded(tmp_path: Path, command: str, value: str) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    args: dict[str, list[Any]] = {
        "dir-image": ["dir-image", rootfs, "--out", tmp_path / "out"],
        "nix-image": ["nix-image", "--store-path", "/nix/store/" + "a" * 32 + "-x", "--out", tmp_path / "out"],
        "nydus-image": ["nydus-image", tmp_path / "src", "--out", tmp_path / "out"],
        "nix-layer": [
            "nix-layer",
            "--job",
            layer_job((tmp_path / "out", store_layer("/nix/store/" + "a" * 32 + "-x"))),
        ],
    }
    proc = run_cli(*args[command], "--threads", value, check=False)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, "--threads")
    assert not (tmp_path / "out").exists()


def test_sigterm_during_an_unpack_leaves_no_scratch(tmp_path: Path) -> None:
    """A runtime bundle on a big base image, terminated while its layers are unpacked."""
    big = [M("dir", "data/"), *(M("file", f"data/f{i}", os.urandom(1 << 20)) for i in range(200))]
    base = write_layout(tmp_path / "base", [tar_bytes(TRUE), tar_bytes(big)], compress=True)
    out = tmp_path / "bundle"
    args = ["nix-image", "--store-path", build("app"), "--from-image", base.root, "--format", "runtime-bundle",
            "--out", out]  # fmt: skip
    proc = subprocess.Popen([layerforge_bin(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=nix_env(tmp_path))  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if list(tmp_path.glob(".layerforge-bundle-*/rootfs/data/f1*")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert not out.exists()
    assert not scratch_left(tmp_path), scratch_left(tmp_path)


# -- 5. wrong JSON types, damaged layers, deep indexes: one-line errors --------------------------

BAD_CONFIGS: dict[str, tuple[dict[str, Any], str]] = {
    "os.features-int": ({"os.features": 5}, "os.features"),
    "os.features-newline": ({"os.features": ["CONFIG_A=y\nCONFIG_B=y"]}, "os.features"),
    "config-list": ({"config": ["a"]}, "config"),
    "env-int": ({"config": {"Env": 5}}, "config.Env"),
    "env-newline": ({"config": {"Env": ["A=1\nB=2"]}}, "config.Env"),
    "user-newline": ({"config": {"User": "root\n"}}, "config.User"),
    "labels-values": ({"config": {"Labels": {"a": 1}}}, "config.Labels"),
    "labels-list": ({"config": {"Labels": ["a"]}}, "config.Labels"),
    "exposed-ports-list": ({"config": {"ExposedPorts": ["80"]}}, "config.ExposedPorts"),
    "entrypoint-string": ({"config": {"Entrypoint": "/bin/true"}}, "config.Entrypoint"),
    "history-int": ({"history": 3}, "history"),
    "diff-ids-int": ({"rootfs": {"type": "layers", "diff_ids": 3}}, "rootfs.diff_ids"),
    "architecture-int": ({"architecture": 64}, "architecture"),
    "float": ({"created": 1.5}, "not an integer"),
    "deep": ({"x": json.loads("[" * 200 + "]" * 200)}, "nested more than"),
}
BAD_MANIFESTS: dict[str, tuple[dict[str, Any], str]] = {
    "annotations-list": ({"annotations": ["a", "b"]}, "annotations"),
    "annotation-value-int": ({"annotations": {"a": 1}}, "annotations"),
    "config-list": ({"config": ["x"]}, "config"),
    "layers-object": ({"layers": {"a": 1}}, "layers"),
    "layer-size-string": (
        {
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + "0" * 64, "size": "12"}
            ]
        },
        "layers[0].size",
    ),
    "layer-size-huge": (
        {
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + "0" * 64, "size": 1 << 70}
            ]
        },
        "layers[0].size",
    ),
    "layer-size-bool": (
        {
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + "0" * 64, "size": True}
            ]
        },
        "layers[0].size",
    ),
    "schema-version-true": ({"schemaVersion": True}, "schemaVersion 2"),
    "platform-features-int": ({"config": None}, "config"),
}


def _commands(tmp_path: Path, layout: Path) -> list[list[Any]]:
    kernel = elf_kernel(tmp_path / "k")
    return [
        ["inspect", layout],
        ["inspect", "--json", layout],
        ["export-docker", layout, "--out", tmp_path / "out.tar"],
        ["unikraft-image", "--kernel", kernel, *KERNEL_ARGS, "--rootfs-image", layout, "--out", tmp_path / "out"],
        ["nydus-image", layout, "--out", tmp_path / "out"],
    ]


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_wrong_config_types_are_one_line_errors(tmp_path: Path, case: str) -> None:
    extra, field = BAD_CONFIGS[case]
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)], config=extra)
    for args in _commands(tmp_path, image.root):
        proc = run_cli(*args, check=False)
        assert proc.returncode == 1, (args, proc.stdout)
        assert_one_line_error(proc, field, image.config)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tar").exists()


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_wrong_manifest_types_are_one_line_errors(tmp_path: Path, case: str) -> None:
    extra, field = BAD_MANIFESTS[case]
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)], manifest_extra=extra)
    for args in _commands(tmp_path, image.root):
        proc = run_cli(*args, check=False)
        assert proc.returncode == 1, (args, proc.stdout)
        assert_one_line_error(proc, field, image.manifest)


@pytest.mark.parametrize(
    ("entry_extra", "field"),
    [
        ({"annotations": ["x"]}, "manifests[0].annotations"),
        ({"platform": {"architecture": "amd64", "os": "linux", "os.features": 7}}, "manifests[0].platform.os.features"),
        ({"platform": ["linux"]}, "manifests[0].platform"),
        ({"size": -3}, "manifests[0].size"),
    ],
)
def test_wrong_index_types_are_one_line_errors(tmp_path: Path, entry_extra: dict[str, Any], field: str) -> None:
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)], index_entry_extra=entry_extra)
    for args in _commands(tmp_path, image.root):
        proc = run_cli(*args, check=False)
        assert proc.returncode == 1, (args, proc.stdout)
        assert_one_line_error(proc, field, "index.json")


DAMAGED = {
    "not-a-tar": b"this is not a tar archive at all\n" * 40,
    "truncated-tar": tar_bytes([*TRUE, M("file", "big", os.urandom(20_000))])[:6000],
    "truncated-header": tar_bytes(TRUE)[:700],
}


@pytest.mark.parametrize("case", list(DAMAGED))
@pytest.mark.parametrize("compress", [False, True])
def test_damaged_layers_are_one_line_errors(tmp_path: Path, case: str, compress: bool) -> None:
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE), DAMAGED[case]], compress=compress)
    kernel = elf_kernel(tmp_path / "k")
    runs = [
        (["export-docker", image.root, "--out", tmp_path / "out.tar"], None),
        (
            [
                "unikraft-image",
                "--kernel",
                kernel,
                *KERNEL_ARGS,
                "--rootfs-image",
                image.root,
                "--out",
                tmp_path / "out",
            ],
            None,
        ),
        (
            [
                "nix-image",
                "--store-path",
                build("app"),
                "--from-image",
                image.root,
                "--format",
                "runtime-bundle",
                "--out",
                tmp_path / "out",
            ],
            nix_env(tmp_path),
        ),
        (
            ["nix-image", "--store-path", build("app"), "--from-image", image.root, "--out", tmp_path / "out"],
            nix_env(tmp_path),
        ),
    ]
    for args, env in runs:
        proc = run_cli(*args, check=False, env=env)
        # nix-image reads the base's files while checking the entrypoint, and reports what
        # fails there under --entrypoint (exit 2): still one line naming the layer.
        assert proc.returncode == (1 if args[0] != "nix-image" else proc.returncode), (args, proc.stdout)
        assert_one_line_error(proc, image.layers[1])
        assert not (tmp_path / "out").exists() and not (tmp_path / "out.tar").exists()
        assert not scratch_left(tmp_path)


def test_damaged_rootfs_tar_is_a_one_line_error(tmp_path: Path) -> None:
    for name, data in DAMAGED.items():
        tar = tmp_path / f"{name}.tar"
        tar.write_bytes(data)
        proc = run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "k"), *KERNEL_ARGS, "--rootfs", tar,
                       "--out", tmp_path / "out", check=False)  # fmt: skip
        assert_one_line_error(proc, str(tar))
        assert not (tmp_path / "out").exists()


def _nested_indexes(root: Path, depth: int, *, cycle: bool = False) -> None:
    image = write_layout(root, [tar_bytes(TRUE)], index_entry_extra={"platform": {"architecture": "amd64",
                                                                                  "os": "linux"}})  # fmt: skip
    child: dict[str, Any] = json.loads((root / "index.json").read_bytes())["manifests"][0]
    child["annotations"] = {}
    for _ in range(depth):
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": [child]}).encode()  # fmt: skip
        child = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(root, body), "size": len(body)}
    if cycle:  # an index naming a blob that names it: impossible with digests, so a self-listing file
        child = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": image.manifest, "size": 1}
    child["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [child]}))


def test_deeply_nested_indexes_are_bounded(tmp_path: Path) -> None:
    _nested_indexes(tmp_path / "deep", 3000)
    _nested_indexes(tmp_path / "two", 2)
    proc = run_cli("export-docker", tmp_path / "deep", "--out", tmp_path / "a.tar", check=False)
    assert_one_line_error(proc, "nest more than 8")
    proc = run_cli("inspect", tmp_path / "deep", check=False)  # shows the top index only
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    run_cli("export-docker", tmp_path / "two", "--out", tmp_path / "b.tar")  # two levels are fine
    # 3,000 levels of JSON nesting inside index.json itself
    deep = tmp_path / "json"
    write_layout(deep, [tar_bytes(TRUE)])
    (deep / "index.json").write_text('{"schemaVersion":2,"manifests":[],"x":' + "[" * 3000 + "]" * 3000 + "}")
    for args in (["inspect", deep], ["export-docker", deep, "--out", tmp_path / "c.tar"]):
        assert_one_line_error(run_cli(*args, check=False), "index.json", "nested more than")


def _lattice(root: Path, levels: int, *, shortcut: bool = False) -> None:
    """An image under ``levels`` levels of two indexes each listing both indexes of the level
    below 8 times (the lowest, an index of the image 8 times), below a top index listing the
    highest level 8 times: 16**levels distinct paths through 2 * levels + 2 indexes. With
    ``shortcut``, the top index first lists the lowest index directly (a short path to it)."""
    write_layout(root, [tar_bytes(TRUE)], index_entry_extra={"platform": {"architecture": "amd64", "os": "linux"}})
    image: dict[str, Any] = json.loads((root / "index.json").read_bytes())["manifests"][0]
    del image["annotations"]

    def index(entries: list[dict[str, Any]], note: str) -> dict[str, Any]:
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": entries, "annotations": {"note": note}}).encode()  # fmt: skip
        return {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(root, body), "size": len(body)}

    lowest = index([image], "lowest")
    level = [lowest]
    for n in range(levels):
        level = [index([e for e in level for _ in range(8)], f"{n}-{side}") for side in ("a", "b")]
    top = index([lowest] * shortcut + [e for e in level for _ in range(8)], "top")
    top["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))


def _within_a_minute(args: list[Any]) -> subprocess.CompletedProcess[str]:
    """The command run to its end, which must come within 60 s (else it is killed: a failure)."""
    return subprocess.run([layerforge_bin(), *map(str, args)], check=False, capture_output=True, text=True, timeout=60)


def test_indexes_sharing_children_are_read_once(tmp_path: Path) -> None:
    """2**27 paths through 14 indexes (6 levels: at most 8 indexes deep) are 14 indexes to
    read; the nesting bound still holds on every path, a short path read first or not."""
    _lattice(tmp_path / "lattice", 6)
    _lattice(tmp_path / "deep", 7, shortcut=True)  # 9 indexes deep below the shortcut
    for platform in ([], ["--platform", "linux/amd64"]):
        out = tmp_path / "a.tar"
        proc = _within_a_minute(["export-docker", tmp_path / "lattice", *platform, "--out", out])
        assert proc.returncode == 0, proc.stderr
        assert out.stat().st_size > 0
        out.unlink()
    proc = _within_a_minute(["export-docker", tmp_path / "deep", "--out", tmp_path / "b.tar"])
    assert_one_line_error(proc, "nest more than 8")
    assert not (tmp_path / "b.tar").exists()


def test_source_date_epoch_beyond_what_images_record(tmp_path: Path) -> None:
    rootfs = tmp_path / "r"
    rootfs.mkdir()
    for value in ("99999999999999999999", "253402300800"):
        proc = run_cli("dir-image", rootfs, "--out", tmp_path / "o", check=False,
                       env={**os.environ, "SOURCE_DATE_EPOCH": value})  # fmt: skip
        assert_one_line_error(proc, "SOURCE_DATE_EPOCH", value[:10])
        assert not (tmp_path / "o").exists()
    run_cli("dir-image", rootfs, "--out", tmp_path / "o", env={**os.environ, "SOURCE_DATE_EPOCH": "253402300799"})


@pytest.mark.parametrize(
    "content",
    [b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8, b"CONFIG_A=y\x00\x1b[31m\n", b"CONFIG_A=\x1b]0;pwned\x07\n",
     b"CONFIG_A=\xc2\x85x\n"],
)  # fmt: skip
def test_binary_or_control_kconfig_is_refused(tmp_path: Path, content: bytes) -> None:
    kconfig = tmp_path / "k.config"
    kconfig.write_bytes(content)
    proc = run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "k"), *KERNEL_ARGS, "--kconfig", kconfig,
                   "--out", tmp_path / "out", check=False)  # fmt: skip
    assert proc.returncode == 2
    assert_one_line_error(proc, "--kconfig")
    assert "\x1b" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--kconfig", "--kernel", "--initrd", "--initrd-spec"])
def test_fifo_or_device_as_an_input_file_does_not_hang(tmp_path: Path, option: str) -> None:
    os.mkfifo(tmp_path / "fifo")
    files = {"--kernel": elf_kernel(tmp_path / "k"), option: tmp_path / "fifo"}
    args: list[Any] = ["unikraft-image", *KERNEL_ARGS, "--out", tmp_path / "out"]
    if option == "--initrd-spec":
        rootfs = tmp_path / "r"
        rootfs.mkdir()
        args += ["--rootfs", rootfs]
    for name, path in files.items():
        args += [name, path]
    proc, err, ended = bounded_run(args)
    assert ended and proc.returncode == 2, err
    assert "not a regular file" in err and len(err.strip().splitlines()) == 1, err
    files[option] = Path("/dev/zero")
    args = [a if a != tmp_path / "fifo" else Path("/dev/zero") for a in args]
    proc, err, ended = bounded_run(args)
    assert ended and proc.returncode == 2, err
    assert not (tmp_path / "out").exists()


def test_user_named_input_files_may_be_symlinks(tmp_path: Path) -> None:
    kconfig = tmp_path / "real.config"
    kconfig.write_text("CONFIG_A=y\n")
    (tmp_path / "link.config").symlink_to(kconfig)
    (tmp_path / "kernel-link").symlink_to(elf_kernel(tmp_path / "k"))
    (tmp_path / "rootfs.tar").write_bytes(tar_bytes(TRUE))
    (tmp_path / "rootfs-link.tar").symlink_to(tmp_path / "rootfs.tar")
    run_cli("unikraft-image", "--kernel", tmp_path / "kernel-link", *KERNEL_ARGS, "--kconfig", tmp_path / "link.config",
            "--rootfs", tmp_path / "rootfs-link.tar", "--out", tmp_path / "out")  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value"),
    [("--env", "A=1\nB=2"), ("--user", "root\nx"), ("--stop-signal", "SIGTERM\r"), ("--workdir", "/srv\x1b[2J")],
)
def test_control_characters_in_config_options_are_refused(tmp_path: Path, option: str, value: str) -> None:
    rootfs = tmp_path / "r"
    rootfs.mkdir()
    proc = run_cli("dir-image", rootfs, "--out", tmp_path / "o", option, value, check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, option)
    assert not (tmp_path / "o").exists()


# -- 3. names stay inside their roots ------------------------------------------------------------


@pytest.mark.parametrize("name", ["..:..:tmp:x/app:1", "../../x/app:1", "a/../../b:1", "..:5000/app:1"])
def test_kraftkit_store_tag_stays_inside_the_store(tmp_path: Path, name: str) -> None:
    store = tmp_path / "a" / "b" / "store"
    store.mkdir(parents=True)
    canary = make_canary(tmp_path / "a" / "canary")
    kernel = elf_kernel(tmp_path / "k")
    before = tree_state(tmp_path)
    proc = run_cli("unikraft-image", "--kernel", kernel, *KERNEL_ARGS, "--name", name,
                   "--kraftkit-store", store, "--out", tmp_path / "out", check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, "--name")
    assert tree_state(tmp_path) == before, "nothing written anywhere"
    assert tree_state(canary)


def test_kraftkit_store_does_not_follow_a_symlink_below_it(tmp_path: Path) -> None:
    store = tmp_path / "store"
    canary = make_canary(tmp_path / "canary")
    (store / "indexes").mkdir(parents=True)
    (store / "indexes" / "unikraft.org").symlink_to(canary)
    before = tree_state(canary)
    proc = run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "k"), *KERNEL_ARGS, "--name",
                   "unikraft.org/app:1", "--kraftkit-store", store, "--out", tmp_path / "out", check=False)  # fmt: skip
    assert_one_line_error(proc, "--kraftkit-store", "symlink")
    assert tree_state(canary) == before


# -- 6. unikraft-extract: the old result or the complete new one ---------------------------------


def _package(tmp_path: Path, name: str, *, initrd: bool, kconfig: bytes | None = None) -> Path:
    out = tmp_path / name
    args: list[Any] = ["--kernel", elf_kernel(tmp_path / f"{name}_k", payload=name.encode() * 50), *KERNEL_ARGS]
    if initrd:
        rootfs = tmp_path / f"{name}_rootfs"
        rootfs.mkdir()
        (rootfs / "f").write_text(name)
        args += ["--rootfs", rootfs]
    run_cli("unikraft-image", *args, "--out", out)
    return out


def test_extract_into_a_reused_out_keeps_nothing_of_the_previous_package(tmp_path: Path) -> None:
    with_initrd = _package(tmp_path, "one", initrd=True)
    without = _package(tmp_path, "two", initrd=False)
    out = tmp_path / "x"
    run_cli("unikraft-extract", with_initrd, "--plat", "qemu", "--arch", "x86_64", "--out", out)
    assert (out / "initrd").exists()
    run_cli("unikraft-extract", without, "--plat", "qemu", "--arch", "x86_64", "--out", out)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "kconfig", "kernel"]
    assert (out / "kernel").read_bytes() == (tmp_path / "two_k").read_bytes()
    assert not scratch_left(tmp_path)


def test_failed_extract_leaves_out_as_it_was(tmp_path: Path) -> None:
    good = _package(tmp_path, "one", initrd=True)
    out = tmp_path / "x"
    run_cli("unikraft-extract", good, "--plat", "qemu", "--arch", "x86_64", "--out", out)
    before = tree_state(out)
    # The same package, its config's os.features broken: fails after the layers were read.
    bad = tmp_path / "bad"
    bad_kernel = elf_kernel(tmp_path / "bad_k", payload=b"bad" * 50)
    run_cli("unikraft-image", "--kernel", bad_kernel, *KERNEL_ARGS, "--out", bad)
    index = json.loads((bad / "index.json").read_bytes())["manifests"][0]["digest"]
    nested = json.loads((bad / "blobs/sha256" / index[7:]).read_bytes())
    manifest = json.loads((bad / "blobs/sha256" / nested["manifests"][0]["digest"][7:]).read_bytes())
    config = json.loads((bad / "blobs/sha256" / manifest["config"]["digest"][7:]).read_bytes())
    config["os.features"] = [1, 2]
    body = json.dumps(config).encode()
    manifest["config"].update(digest=put(bad, body), size=len(body))
    body = json.dumps(manifest).encode()
    nested["manifests"][0].update(digest=put(bad, body), size=len(body))
    body = json.dumps(nested).encode()
    top = json.loads((bad / "index.json").read_bytes())
    top["manifests"][0].update(digest=put(bad, body), size=len(body))
    (bad / "index.json").write_text(json.dumps(top))
    proc = run_cli("unikraft-extract", bad, "--plat", "qemu", "--arch", "x86_64", "--out", out, check=False)
    assert_one_line_error(proc, "os.features")
    assert tree_state(out) == before
    fresh = tmp_path / "fresh"
    proc = run_cli("unikraft-extract", bad, "--plat", "qemu", "--arch", "x86_64", "--out", fresh, check=False)
    assert proc.returncode == 1 and not fresh.exists()
    assert not scratch_left(tmp_path)


def test_extract_refuses_an_out_holding_other_files(tmp_path: Path) -> None:
    pkg = _package(tmp_path, "one", initrd=False)
    out = tmp_path / "x"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = run_cli("unikraft-extract", pkg, "--plat", "qemu", "--arch", "x86_64", "--out", out, check=False)
    assert_one_line_error(proc, "--out", "notes.txt")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# -- 7. medium and low ---------------------------------------------------------------------------


def test_inspect_checks_descriptor_sizes(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)])
    manifest = json.loads(image.blob(image.manifest).read_bytes())
    manifest["layers"][0]["size"] = 1 << 60
    body = json.dumps(manifest).encode()
    index = json.loads((image.root / "index.json").read_bytes())
    index["manifests"][0].update(digest=put(image.root, body), size=len(body))
    (image.root / "index.json").write_text(json.dumps(index))
    proc = run_cli("inspect", image.root, check=False)
    assert_one_line_error(proc, image.layers[0], "descriptor says 1152921504606846976")


def test_platform_is_checked_for_a_single_manifest(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)])
    proc = run_cli("export-docker", image.root, "--platform", "linux/arm64", "--out", tmp_path / "a.tar", check=False)
    assert_one_line_error(proc, "linux/amd64", "linux/arm64")
    assert not (tmp_path / "a.tar").exists()
    proc = run_cli("nydus-image", image.root, "--platform", "linux/arm64", "--out", tmp_path / "n", check=False)
    assert_one_line_error(proc, "linux/arm64")
    run_cli("export-docker", image.root, "--platform", "linux/amd64", "--out", tmp_path / "a.tar")


def _listed_as(root: Path, platform: dict[str, str], *, nested: bool) -> str:
    """A layout of an arm64 image whose index entry lists it as ``platform``: in index.json
    itself, or (as other tools write indexes) in an index index.json names; the image's digest."""
    image = write_layout(root, [tar_bytes(TRUE)], config={"architecture": "arm64"},
                         index_entry_extra={"platform": platform})  # fmt: skip
    if nested:
        entry = json.loads((root / "index.json").read_bytes())["manifests"][0]
        del entry["annotations"]
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": [entry]}).encode()  # fmt: skip
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(root, body), "size": len(body),
               "annotations": {"org.opencontainers.image.ref.name": "latest"}}  # fmt: skip
        (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return image.manifest


@pytest.mark.parametrize("nested", [False, True])
def test_an_index_entry_must_be_the_platform_of_its_config(tmp_path: Path, nested: bool, podman: Podman) -> None:
    amd64, arm64 = {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux", "variant": "v8"}
    layout = tmp_path / "lying"
    digest = _listed_as(layout, amd64, nested=nested)
    honest = tmp_path / "honest"
    _listed_as(honest, arm64, nested=nested)
    run_cli("export-docker", honest, "--platform", "linux/arm64", "--out", tmp_path / "honest.tar")
    run_cli("inspect", honest)
    (tmp_path / "out").mkdir()
    make_canary(tmp_path / "canary")  # outside the layouts and --out: nothing below tmp_path may change
    before, images = tree_state(tmp_path), podman.image_names()
    for args in (
        ["export-docker", layout, "--platform", "linux/amd64", "--out", tmp_path / "out" / "a.tar"],
        ["export-docker", layout, "--out", tmp_path / "out" / "a.tar"],
        ["inspect", layout],
        ["inspect", "--json", layout],
        ["load", *podman.layerforge_flags(), "--platform", "linux/amd64", "--tag", "lf/lying:1", layout],
        ["nydus-image", layout, "--platform", "linux/amd64", "--out", tmp_path / "out" / "n"],
    ):
        proc = run_cli(*args, check=False)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert_one_line_error(proc, f"'{layout}'", digest, "as linux/amd64", "its config says linux/arm64")
        assert tree_state(tmp_path) == before, args
    assert podman.image_names() == images


def test_dir_image_out_inside_its_source_is_refused(tmp_path: Path) -> None:
    rootfs = tmp_path / "r"
    rootfs.mkdir()
    (rootfs / "f").write_text("x")
    before = tree_state(rootfs)
    for out in (rootfs / "layout", rootfs, rootfs / "a" / "b"):
        proc = run_cli("dir-image", rootfs, "--out", out, check=False)
        assert proc.returncode == 2
        assert_one_line_error(proc, "--out", "inside")
        assert tree_state(rootfs) == before


def test_export_docker_onto_its_own_layout_is_refused(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)])
    before = tree_state(image.root)
    for out in (image.root, image.root / "index.json", image.blob(image.layers[0]), image.root / "new.tar"):
        proc = run_cli("export-docker", image.root, "--out", out, check=False)
        assert proc.returncode == 2
        assert_one_line_error(proc, "--out", "inside the source layout")
        assert tree_state(image.root) == before
    verify_blobs(image.root)


def test_terminal_escapes_in_refs_are_shown_escaped(tmp_path: Path) -> None:
    evil = "app\x1b]0;owned\x07\x1b[2J\x9b31m"
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)], ref="x")
    index = json.loads((image.root / "index.json").read_bytes())
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": evil, "k\x1b": "v\x9b"}
    (image.root / "index.json").write_text(json.dumps(index))
    manifest_note = {"annotations": {"note": "a\x1b[31mred", "\x1b[1m": "x"}}
    write_layout(tmp_path / "img2", [tar_bytes(TRUE)], manifest_extra=manifest_note, ref="x")
    for proc in (
        run_cli("inspect", image.root),
        run_cli("inspect", "--json", image.root),
        run_cli("inspect", f"{image.root}:nope", check=False),
        run_cli("inspect", tmp_path / "img2"),
        run_cli("inspect", "--json", tmp_path / "img2"),
        run_cli("export-docker", f"{image.root}", "--out", tmp_path / "a.tar", check=False),
    ):
        for stream in (proc.stdout, proc.stderr):
            assert not any(c in stream for c in "\x1b\x07\x9b"), repr(stream)
    assert "\\x1b]0;owned" in run_cli("inspect", image.root).stdout
    assert json.loads(run_cli("inspect", "--json", image.root).stdout)["reference"] == evil


def test_stale_scratch_of_killed_runs_is_swept(tmp_path: Path) -> None:
    """Scratch directories carry their process's pid; the next run removes those of dead
    processes (read-only trees included) and leaves a live one's alone."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE)])
    pkg = tmp_path / "pkg"
    run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "k"), *KERNEL_ARGS, "--out", pkg)
    stale = [
        pkg / ".layerforge-tmp" / f".layerforge-initrd-{dead.pid}-0badc0de",
        tmp_path / f".layerforge-export-{dead.pid}-0badc0de",
        tmp_path / f".layerforge-bundle-{dead.pid}-0badc0de",
    ]
    live = tmp_path / f".layerforge-export-{os.getpid()}-0badc0de"
    for d in [*stale, live]:
        (d / "tree" / "ro").mkdir(parents=True)
        (d / "tree" / "ro" / "f").write_text("x")
        (d / "tree" / "ro").chmod(0o555)
    run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "k"), *KERNEL_ARGS, "--rootfs-image", image.root,
            "--out", pkg)  # fmt: skip
    run_cli("export-docker", image.root, "--out", tmp_path / "a.tar")
    env = nix_env(tmp_path)
    run_cli("nix-image", "--store-path", build("app"), "--from-image", image.root, "--format", "runtime-bundle",
            "--out", tmp_path / "bundle", env=env)  # fmt: skip
    assert [d for d in stale if d.exists()] == []
    assert live.exists()
    assert not (pkg / ".layerforge-tmp").exists()


def test_sigkill_leftovers_are_cleaned_by_the_next_run(tmp_path: Path) -> None:
    """kill -9 while an initrd is unpacked from an image: its scratch tree stays (nothing
    can run on SIGKILL) and carries the pid, so the next package build removes it."""
    big = [M("dir", "data/"), *(M("file", f"data/f{i}", os.urandom(1 << 20)) for i in range(150))]
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE), tar_bytes(big)], compress=True)
    pkg = tmp_path / "pkg"
    kernel = elf_kernel(tmp_path / "k")
    run_cli("unikraft-image", "--kernel", kernel, *KERNEL_ARGS, "--out", pkg)
    proc = subprocess.Popen([layerforge_bin(), "unikraft-image", "--kernel", str(kernel), *KERNEL_ARGS,
                             "--rootfs-image", str(image.root), "--out", str(pkg)])  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if list((pkg / ".layerforge-tmp").glob("*/tree/data/f1*")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before it could be killed"
    proc.kill()
    proc.wait(timeout=30)
    left = [p.name for p in (pkg / ".layerforge-tmp").iterdir()]
    assert left and all(str(proc.pid) in n for n in left), left
    run_cli("unikraft-image", "--kernel", kernel, *KERNEL_ARGS, "--out", pkg)
    assert not (pkg / ".layerforge-tmp").exists()


def test_sigkill_during_export_is_cleaned_by_the_next_export(tmp_path: Path) -> None:
    big = [M("dir", "data/"), *(M("file", f"data/f{i}", os.urandom(1 << 20)) for i in range(200))]
    image = write_layout(tmp_path / "img", [tar_bytes(TRUE), tar_bytes(big)], compress=True)
    out_dir = tmp_path / "outdir"
    out_dir.mkdir()
    proc = subprocess.Popen([layerforge_bin(), "export-docker", str(image.root), "--out", str(out_dir / "a.tar")])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.stat().st_size > (8 << 20) for p in out_dir.glob(".layerforge-export-*/*") if p.is_file()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the export ended before it could be killed"
    proc.kill()
    proc.wait(timeout=30)
    assert list(out_dir.glob(".layerforge-export-*"))
    run_cli("export-docker", image.root, "--out", out_dir / "a.tar")
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.tar"]


def test_hard_links_and_sizes_of_a_verified_import(tmp_path: Path) -> None:
    """A good base image is still hard-linked (same filesystem) after being verified."""
    base = write_layout(tmp_path / "base", [tar_bytes(TRUE)])
    out = tmp_path / "out"
    run_cli("nix-image", "--store-path", build("app"), "--from-image", base.root, "--out", out, env=nix_env(tmp_path))
    linked = out / "blobs" / "sha256" / base.layers[0][7:]
    assert linked.stat().st_ino == base.blob(base.layers[0]).stat().st_ino
    assert sha(linked.read_bytes()) == base.layers[0]
