"""unikraft_image: kraftkit-shaped packages, checked field by field, booted under qemu,
with the generated cpio read back by GNU cpio."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    assert_one_line_error,
    blob_path,
    index_entry,
    layerforge_bin,
    read_json_blob,
    run,
    run_cli,
    snapshot,
    validate_schema,
    verify_blobs,
)
from tests.kernel_support import EM_AARCH64, MARKER, boot, busybox_rootfs, bzimage_header, debian_kernel, elf_kernel

EPOCH = "1700000000"
KCONFIG = """\
CONFIG_UK_FULLVERSION="0.18.0~5f0f6e1"
CONFIG_UK_NAME="helloworld"
CONFIG_UK_APP="/home/u/helloworld"
CONFIG_UK_BASE="/home/u/.unikraft/unikraft"
CONFIG_LIBUKDEBUG=y
# CONFIG_LIBUKDEBUG_PRINTD is not set
CONFIG_STACK_SIZE_PAGE_ORDER=4
"""
FEATURES = [
    "CONFIG_ARCH_X86_64=y",
    "CONFIG_KVM_VMM_QEMU=y",
    "CONFIG_LIBUKDEBUG=y",
    "CONFIG_PLAT_KVM=y",
    "CONFIG_STACK_SIZE_PAGE_ORDER=4",
    "CONFIG_UK_FULLVERSION=0.18.0~5f0f6e1",
    "CONFIG_UK_NAME=helloworld",
]
# An empty newc archive (just the trailer), standing in for an initrd built elsewhere.
EMPTY_CPIO = b"070701" + b"00000000" * 4 + b"00000001" + b"00000000" * 6 + b"0000000B" + b"00000000" + b"TRAILER!!!\0"
EMPTY_CPIO += b"\0" * (-len(EMPTY_CPIO) % 4)


@pytest.fixture(autouse=True)
def _epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def package(out: Path, *args: str | os.PathLike[str]) -> dict[str, Any]:
    run_cli("unikraft-image", *args, "--out", out)
    return nested_index(out)


def nested_index(layout: Path, ref: str = "latest") -> dict[str, Any]:
    entry = index_entry(layout, ref)
    assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    return read_json_blob(layout, entry["digest"])  # type: ignore[no-any-return]


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_documents_match_kraftkit_field_by_field(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "helloworld_qemu-x86_64", payload=b"kernel-bytes\n" * 100)
    (tmp_path / "kconfig").write_text(KCONFIG)
    initrd = tmp_path / "initrd.cpio"
    initrd.write_bytes(EMPTY_CPIO)
    out = tmp_path / "out"
    index = package(
        out, "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu", "--kconfig", tmp_path / "kconfig",
        "--initrd", initrd, "--name", "unikraft.org/helloworld:latest", "--cmd", "/bin/hello", "world",
        "--env", "FOO=bar", "--label", "org.example.team=demo",
    )  # fmt: skip
    platform = {"architecture": "x86_64", "os": "qemu", "os.version": "0.18.0~5f0f6e1", "os.features": FEATURES}
    annotations = {
        "io.containerd.image.name": "unikraft.org/helloworld:latest",
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        "org.opencontainers.image.ref.name": "unikraft.org/helloworld",
        "org.unikraft.image.name": "unikraft.org/helloworld",
        "org.unikraft.kernel.version": "0.18.0~5f0f6e1",
        "sh.kraftkit.version": "0.9.2",
    }
    (entry,) = index["manifests"]
    manifest = read_json_blob(out, entry["digest"])
    kernel_layer, initrd_layer = manifest["layers"]
    assert index == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": entry["digest"],
                "size": blob_path(out, entry["digest"]).stat().st_size,
                "annotations": annotations,
                "platform": platform,
            }
        ],
        "annotations": {
            "io.containerd.image.name": "unikraft.org/helloworld:latest",
            "org.opencontainers.image.ref.name": "unikraft.org/helloworld",
            "sh.kraftkit.version": "0.9.2",
        },
    }
    config_digest = manifest["config"]["digest"]
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": blob_path(out, config_digest).stat().st_size,
            "platform": platform,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": kernel_layer["digest"],
                "size": blob_path(out, kernel_layer["digest"]).stat().st_size,
                "annotations": {"org.unikraft.kernel.image": "/unikraft/bin/kernel"},
            },
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": initrd_layer["digest"],
                "size": blob_path(out, initrd_layer["digest"]).stat().st_size,
                "annotations": {"org.unikraft.kernel.initrd": "/unikraft/bin/initrd"},
            },
        ],
        "annotations": annotations,
    }
    assert read_json_blob(out, config_digest) == {
        "architecture": "x86_64",
        "os": "qemu",
        "os.version": "0.18.0~5f0f6e1",
        "os.features": FEATURES,
        "config": {"Env": ["FOO=bar"], "Cmd": ["/bin/hello", "world"], "Labels": {"org.example.team": "demo"}},
        "rootfs": {"type": "layers", "diff_ids": [kernel_layer["digest"], initrd_layer["digest"]]},
    }
    # The same input gives these bytes on any machine.
    assert index_entry(out, "latest")["digest"] == (
        "sha256:c7ae6d9276db2188bc5fa1639e7e4bcb3198fb77f0f6bc19997c066d7c52c12f"
    )
    validate_schema(index, "image-index-schema.json")
    validate_schema(manifest, "image-manifest-schema.json")
    verify_blobs(out)
    # Layers are plain tars (kraftkit unpacks them by diff_id) holding the well-known paths.
    for layer, name, source in ((kernel_layer, "kernel", kernel), (initrd_layer, "initrd", initrd)):
        blob = blob_path(out, layer["digest"])
        listing = run("tar", "-tvf", blob).stdout.splitlines()
        assert [line.split()[-1] for line in listing] == ["unikraft/", "unikraft/bin/", f"unikraft/bin/{name}"]
        assert all(" root/root " in line and " 2023-11-14 " in line for line in listing), listing
        assert run("tar", "-xOf", blob, f"unikraft/bin/{name}").stdout.encode() == source.read_bytes()


def test_rootfs_initrd_boots_under_qemu(tmp_path: Path) -> None:
    vmlinuz = debian_kernel()
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    (tmp_path / "nodes").write_text("# devices\nnod /dev/console 0600 0 0 c 5 1\n")
    out = tmp_path / "out"
    args = ["--kernel", vmlinuz, "--arch", "x86_64", "--plat", "qemu", "--rootfs", rootfs,
            "--initrd-spec", tmp_path / "nodes", "--name", "unikraft.org/boot:1.0"]  # fmt: skip
    package(out, *args)
    extracted = tmp_path / "extracted"
    printed = run_cli("unikraft-extract", f"{out}:latest", "--plat", "qemu", "--arch", "x86_64", "--out", extracted)
    assert "kernel" in printed.stdout and "initrd" in printed.stdout
    assert (extracted / "kernel").read_bytes() == vmlinuz.read_bytes()

    console = boot(extracted / "kernel", extracted / "initrd")
    assert MARKER in console, console[-2000:]

    # GNU cpio reads the archive: the listing, and the tree it unpacks.
    initrd = extracted / "initrd"
    with open(initrd, "rb") as f:
        listing = subprocess.run(["cpio", "-t", "--quiet"], stdin=f, capture_output=True, check=True, timeout=60)
    assert listing.stdout.decode().split() == ["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "init", "proc"]
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with open(initrd, "rb") as f:
        subprocess.run(["cpio", "-idm", "--quiet"], stdin=f, cwd=unpacked, check=True, timeout=60)
    got = snapshot(unpacked)
    assert got["entries"].pop("dev/console") == ("char", 0o600, 5, 1)
    assert got["entries"].pop("dev")[0] == "dir"
    assert got == snapshot(rootfs)

    # A rebuild elsewhere gives the same cpio bytes and the same index.
    again = tmp_path / "elsewhere" / "out"
    package(again, *args)
    assert index_entry(again, "latest")["digest"] == index_entry(out, "latest")["digest"]
    run_cli("unikraft-extract", f"{again}:latest", "--plat", "qemu", "--arch", "x86_64", "--out", tmp_path / "x2")
    assert (tmp_path / "x2" / "initrd").read_bytes() == initrd.read_bytes()


def test_several_platforms_and_replacing_one(tmp_path: Path) -> None:
    x86 = elf_kernel(tmp_path / "app_qemu-x86_64")
    arm = elf_kernel(tmp_path / "app_qemu-arm64", machine=EM_AARCH64)
    fc = elf_kernel(tmp_path / "app_fc-x86_64", payload=b"firecracker build\n")
    out = tmp_path / "out"
    index = package(
        out, "--target", f"qemu/arm64={arm}", "--target", f"fc/x86_64={fc}", "--target", f"qemu/x86_64={x86}",
        "--name", "unikraft.org/app:1.0",
    )  # fmt: skip
    platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]]
    assert platforms == [("fc", "x86_64"), ("qemu", "arm64"), ("qemu", "x86_64")]
    assert "CONFIG_KVM_VMM_FIRECRACKER=y" in index["manifests"][0]["platform"]["os.features"]
    assert "CONFIG_ARCH_ARM_64=y" in index["manifests"][1]["platform"]["os.features"]
    first = {m["platform"]["os"] + "/" + m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}

    # Argument order does not matter.
    other = tmp_path / "other"
    package(other, "--target", f"qemu/x86_64={x86}", "--target", f"fc/x86_64={fc}", "--target",
            f"qemu/arm64={arm}", "--name", "unikraft.org/app:1.0")  # fmt: skip
    assert index_entry(other, "latest")["digest"] == index_entry(out, "latest")["digest"]

    # Re-packaging one platform replaces only its entry.
    fc.write_bytes(fc.read_bytes() + b"rebuilt\n")
    index = package(out, "--kernel", fc, "--arch", "x86_64", "--plat", "firecracker", "--name", "unikraft.org/app:1.0")
    now = {m["platform"]["os"] + "/" + m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert now.keys() == first.keys()
    assert now["fc/x86_64"] != first["fc/x86_64"]
    assert {k: v for k, v in now.items() if k != "fc/x86_64"} == {k: v for k, v in first.items() if k != "fc/x86_64"}
    extracted = tmp_path / "fc"
    run_cli("unikraft-extract", f"{out}:latest", "--plat", "fc", "--arch", "x86_64", "--out", extracted)
    assert (extracted / "kernel").read_bytes() == fc.read_bytes()
    assert not (extracted / "initrd").exists()

    # --replace drops the platforms not rebuilt.
    index = package(out, "--kernel", fc, "--arch", "x86_64", "--plat", "fc", "--name", "unikraft.org/app:1.0",
                    "--replace")  # fmt: skip
    assert [m["digest"] for m in index["manifests"]] == [now["fc/x86_64"]]


def test_kraftkit_local_store(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "hello_qemu-x86_64")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    store = tmp_path / "kraftkit" / "runtime" / "oci"
    out = tmp_path / "out"
    run_cli("unikraft-image", "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu", "--rootfs", rootfs,
            "--name", "unikraft.org/hello:0.1", "--out", out, "--kraftkit-store", store)  # fmt: skip
    tag = store / "indexes" / "unikraft.org" / "hello" / "0.1"
    assert tag.is_symlink() and Path(os.readlink(tag)).is_absolute()
    index_digest = index_entry(out, "latest")["digest"]
    assert Path(os.readlink(tag)) == (store / "digests" / "sha256" / index_digest.split(":")[1]).resolve()
    # Every blob kraft needs is present under its digest, and nothing else.
    index = json.loads(tag.read_bytes())
    wanted = {index_digest}
    for m in index["manifests"]:
        manifest = json.loads((store / "digests" / "sha256" / m["digest"].split(":")[1]).read_bytes())
        wanted |= {m["digest"], manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}
    stored = {"sha256:" + p.name: p for p in (store / "digests" / "sha256").iterdir()}
    assert set(stored) == wanted
    assert all(sha256(p) == d for d, p in stored.items())
    assert not any(p.stat().st_ino == blob_path(out, d).stat().st_ino for d, p in stored.items()), "copies, not links"


def test_gzip_initrd_and_symlinked_kernel(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "k")
    (tmp_path / "link").symlink_to("k")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    out = tmp_path / "out"
    package(out, "--kernel", tmp_path / "link", "--arch", "amd64", "--plat", "kvm", "--rootfs", rootfs,
            "--initrd-compression", "gzip")  # fmt: skip
    ex = tmp_path / "ex"
    run_cli("unikraft-extract", out, "--plat", "qemu", "--arch", "x86_64", "--out", ex)
    assert (ex / "kernel").read_bytes() == kernel.read_bytes(), "the kernel file, not the symlink"
    run("gzip", "-t", ex / "initrd")
    names = subprocess.run(f"gzip -dc {ex / 'initrd'} | cpio -t --quiet", shell=True, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    assert names == ["bin", "bin/busybox", "bin/sh", "init", "proc"]


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("not-a-kernel", ["--kernel", "neither an ELF kernel nor a Linux bzImage"]),
        ("wrong-arch-elf", ["--kernel", "an arm64 kernel (elf)", "target architecture is x86_64"]),
        ("wrong-arch-bzimage", ["--kernel", "an i386 kernel (bzImage)", "target architecture is x86_64"]),
        ("unknown-plat", ["--plat", "unknown platform 'vbox'"]),
        ("unknown-arch", ["--arch", "unknown architecture 'mips'"]),
        ("bad-kconfig", ["--kconfig", "kconfig:2", "expected CONFIG_NAME=VALUE", "LIBFOO y"]),
        ("bad-initrd", ["--initrd", "not a cpio archive"]),
        ("socket-in-rootfs", ["socket", "agent.sock"]),
        ("missing-rootfs", ["--rootfs", "does not exist"]),
        ("bad-target", ["--target", "PLAT/ARCH=KERNEL"]),
        ("duplicate-target", ["--target", "qemu/x86_64 is given twice"]),
        ("bad-name", ["--name", "not a valid repository"]),
        ("bad-node-spec", ["--initrd-spec", "nodes:1", "nod NAME MODE"]),
        ("partial-target", ["--plat", "go together"]),
        ("no-target", ["--kernel", "no target", "--target PLAT/ARCH=KERNEL or --include"]),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(tmp_path: Path, case: str, needles: list[str]) -> None:
    kernel = elf_kernel(tmp_path / "kernel")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    base = ["--kernel", str(kernel), "--arch", "x86_64", "--plat", "qemu"]
    sock = None
    if case == "not-a-kernel":
        (tmp_path / "kernel").write_text("just text\n")
        args = base
    elif case == "wrong-arch-elf":
        elf_kernel(tmp_path / "kernel", machine=EM_AARCH64)
        args = base
    elif case == "wrong-arch-bzimage":
        bzimage_header(tmp_path / "kernel", is_64=False)
        args = base
    elif case == "unknown-plat":
        args = ["--kernel", str(kernel), "--arch", "x86_64", "--plat", "vbox"]
    elif case == "unknown-arch":
        args = ["--kernel", str(kernel), "--arch", "mips", "--plat", "qemu"]
    elif case == "bad-kconfig":
        (tmp_path / "kconfig").write_text("CONFIG_A=y\nLIBFOO y\n")
        args = [*base, "--kconfig", str(tmp_path / "kconfig")]
    elif case == "bad-initrd":
        (tmp_path / "initrd").write_text("not an archive")
        args = [*base, "--initrd", str(tmp_path / "initrd")]
    elif case == "socket-in-rootfs":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(rootfs / "agent.sock"))
        args = [*base, "--rootfs", str(rootfs)]
    elif case == "missing-rootfs":
        args = [*base, "--rootfs", str(tmp_path / "nope")]
    elif case == "bad-target":
        args = ["--target", f"qemu-x86_64={kernel}"]
    elif case == "duplicate-target":
        args = [*base, "--target", f"qemu/x86_64={kernel}"]
    elif case == "bad-name":
        args = [*base, "--name", "Unikraft.org/Bad Name"]
    elif case == "no-target":
        args = []
    elif case == "bad-node-spec":
        (tmp_path / "nodes").write_text("dir /dev 0755 0 0\n")
        args = [*base, "--rootfs", str(rootfs), "--initrd-spec", str(tmp_path / "nodes")]
    else:
        args = ["--kernel", str(kernel), "--arch", "x86_64"]
    out = tmp_path / "out"
    try:
        proc = run_cli("unikraft-image", *args, "--out", out, check=False)
    finally:
        if sock is not None:
            sock.close()
    assert_one_line_error(proc, *needles)
    assert not out.exists(), "nothing half-written"


def test_failed_repackage_keeps_the_old_package(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "kernel")
    out = tmp_path / "out"
    package(out, "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = tmp_path / "rootfs"
    bad.mkdir()
    (bad / "secret").write_text("x")
    os.chown(bad / "secret", 4321, 4321)
    (bad / "secret").chmod(0o600)
    drop = "-dac_override,-dac_read_search"
    proc = subprocess.run(
        ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", layerforge_bin(), "unikraft-image",
         "--kernel", str(kernel), "--arch", "x86_64", "--plat", "qemu", "--rootfs", str(bad), "--out", str(out)],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_line_error(proc, "cannot read", "secret", "Permission denied")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_extract_errors(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "kernel")
    out = tmp_path / "out"
    package(out, "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu")
    proc = run_cli("unikraft-extract", out, "--plat", "xen", "--arch", "x86_64", "--out", tmp_path / "x", check=False)
    assert_one_line_error(proc, "no xen/x86_64 manifest", "qemu/x86_64")
    entry = read_json_blob(out, index_entry(out, "latest")["digest"])["manifests"][0]
    layer = read_json_blob(out, entry["digest"])["layers"][0]
    blob = blob_path(out, layer["digest"])
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"X")
    proc = run_cli("unikraft-extract", out, "--plat", "qemu", "--arch", "x86_64", "--out", tmp_path / "y", check=False)
    assert_one_line_error(proc, "does not match its digest")
    assert not (tmp_path / "y" / "kernel").exists()


def test_rootfs_from_an_oci_image_and_included_packages(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "app_qemu-x86_64")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    image = tmp_path / "image"
    run_cli("dir-image", rootfs, "--out", image, "--tag", "base")
    from_dir, from_image = tmp_path / "from-dir", tmp_path / "from-image"
    common = ["--kernel", kernel, "--arch", "x86_64", "--plat", "qemu", "--name", "unikraft.org/app:1"]
    package(from_dir, *common, "--rootfs", rootfs)
    package(from_image, *common, "--rootfs-image", f"{image}:base")
    assert index_entry(from_image, "latest") == index_entry(from_dir, "latest"), "the same tree, the same initrd"

    fc = tmp_path / "fc"
    package(fc, "--kernel", elf_kernel(tmp_path / "app_fc-x86_64", payload=b"fc\n"), "--arch", "x86_64",
            "--plat", "fc", "--name", "unikraft.org/app:1")  # fmt: skip
    both = tmp_path / "both"
    index = package(both, "--include", f"{from_dir}:latest", "--include", f"{fc}:latest", "--name",
                    "unikraft.org/app:1")  # fmt: skip
    parts = {m["platform"]["os"]: m["digest"] for m in index["manifests"]}
    assert parts == {
        "qemu": nested_index(from_dir)["manifests"][0]["digest"],
        "fc": nested_index(fc)["manifests"][0]["digest"],
    }
    verify_blobs(both)
    run_cli("unikraft-extract", both, "--plat", "qemu", "--arch", "x86_64", "--out", tmp_path / "x")
    assert (tmp_path / "x" / "kernel").read_bytes() == kernel.read_bytes()
    clash = run_cli("unikraft-image", "--include", from_dir, "--include", from_image, "--name", "unikraft.org/app:1",
                    "--out", tmp_path / "clash", check=False)  # fmt: skip
    assert_one_line_error(clash, "--include", "qemu/x86_64 is in both")
    assert not (tmp_path / "clash").exists()


def test_initrd_owners_from_option_and_node_spec(tmp_path: Path) -> None:
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    (tmp_path / "nodes").write_text("nod /dev/ttyS0 0660 0 5 c 4 64\npipe /run/ctl 0600 33 33\n")
    out = tmp_path / "out"
    package(out, "--kernel", elf_kernel(tmp_path / "k"), "--arch", "x86_64", "--plat", "qemu", "--rootfs", rootfs,
            "--initrd-spec", tmp_path / "nodes", "--initrd-owner", "1000:100")  # fmt: skip
    run_cli("unikraft-extract", out, "--plat", "qemu", "--arch", "x86_64", "--out", tmp_path / "x")
    with open(tmp_path / "x" / "initrd", "rb") as f:
        listing = subprocess.run(["cpio", "-tv", "--numeric-uid-gid", "--quiet"], stdin=f, capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
    owners = {line.split()[-1]: (line.split()[0], line.split()[2], line.split()[3]) for line in listing.splitlines()}
    assert owners["init"] == ("-rwxr-xr-x", "1000", "100")
    assert owners["dev/ttyS0"] == ("crw-rw----", "0", "5")
    assert owners["run/ctl"] == ("prw-------", "33", "33")
    bad = run_cli("unikraft-image", "--kernel", tmp_path / "k", "--arch", "x86_64", "--plat", "qemu", "--rootfs",
                  rootfs, "--initrd-owner", "root", "--out", tmp_path / "bad", check=False)  # fmt: skip
    assert_one_line_error(bad, "--initrd-owner", "UID:GID")
