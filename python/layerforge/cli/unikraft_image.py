"""``layerforge unikraft-image``: a unikernel packaged the way ``kraft pkg`` does, for one or
several platforms, reproducibly."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from layerforge.cli.args import argv_list, env_list, key_values
from layerforge.cli.output_format import add_output_options, name_output
from layerforge.cli.progress import ProgressBar
from layerforge.errors import UsageError
from layerforge.images.unikraft.documents import KRAFTKIT_VERSION, RunConfig
from layerforge.images.unikraft.initrd import INITRD_COMPRESSIONS, InitrdSource, parse_node_spec
from layerforge.images.unikraft.kraftkit_store import default_store
from layerforge.images.unikraft.package import UnikraftImageRequest, build_unikraft_image
from layerforge.images.unikraft.platforms import normalize_arch, normalize_plat
from layerforge.images.unikraft.target import UnikraftTarget, parse_target
from layerforge.model.reference import DEFAULT_TAG, parse_layout_ref
from layerforge.option_flags import default


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "unikraft-image",
        help="package a unikernel (kernel + initrd) the way kraft pkg does",
        description="Package a unikernel into the OCI layout LAYOUT_DIR as KraftKit's `kraft pkg` does: an "
        "image index with one manifest per platform, the kernel and initrd as uncompressed layers, the "
        "kconfig as os.features. The same inputs give the same digests on any machine.",
    )
    p.add_argument("--out", required=True, metavar="LAYOUT_DIR", type=Path, help="OCI layout to write")
    p.add_argument("--tag", default=DEFAULT_TAG, metavar="REF", help=f"reference in the layout (default {DEFAULT_TAG})")
    t = p.add_argument_group("target (one platform; more with --target)")
    t.add_argument("--kernel", type=Path, metavar="FILE", help="Unikraft ELF kernel or Linux bzImage/Image")
    t.add_argument("--arch", metavar="ARCH", help="x86_64, arm64 or arm (amd64/aarch64 accepted)")
    t.add_argument("--plat", metavar="PLAT", help="qemu, fc, xen, kraftcloud or linuxu (kvm/firecracker accepted)")
    t.add_argument("--kconfig", type=Path, metavar="FILE", help="the kernel's .config (stored as os.features)")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--initrd", type=Path, metavar="FILE", help="an existing initrd (cpio, compressed cpio, EROFS)")
    src.add_argument("--rootfs", type=Path, metavar="DIR", help="directory or tar packed as a reproducible newc cpio")
    src.add_argument(
        "--rootfs-image", metavar="LAYOUT[:REF]", help="an OCI image whose root filesystem is packed as the initrd"
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="PLAT/ARCH=KERNEL[,initrd=F][,rootfs=D][,kconfig=F]",
        help="another platform of the package (repeatable)",
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="LAYOUT[:REF]",
        help="add the platforms of another unikernel package (repeatable; platforms built here win)",
    )
    i = p.add_argument_group("initrd from --rootfs")
    initrd_default = str(default("unikraft.initrd_compression"))
    i.add_argument(
        "--initrd-compression",
        choices=INITRD_COMPRESSIONS,
        default=initrd_default,
        help=" or ".join(f"{c} (default)" if c == initrd_default else c for c in INITRD_COMPRESSIONS),
    )
    i.add_argument("--initrd-spec", type=Path, metavar="FILE", help="device nodes: gen_init_cpio 'nod'/'pipe' lines")
    i.add_argument("--keep-setuid", action="store_true", help="keep setuid/setgid bits (dropped by default)")
    i.add_argument("--initrd-owner", metavar="UID:GID", help="owner of the packed entries (default 0:0)")
    c = p.add_argument_group("package")
    c.add_argument("--name", metavar="NAME", help="package name, e.g. unikraft.org/app:1.0 (default from the kernel)")
    c.add_argument("--version", metavar="V", help="Unikraft version (default: CONFIG_UK_FULLVERSION)")
    c.add_argument("--cmd", nargs="+", metavar="ARG", help="application arguments (words, or one JSON array)")
    c.add_argument("--env", action="append", metavar="K=V", help="environment variable (repeatable)")
    c.add_argument("--label", action="append", metavar="K=V", help="label (repeatable)")
    c.add_argument("--replace", action="store_true", help="drop platforms of an existing package not rebuilt now")
    c.add_argument(
        "--kraftkit-store",
        nargs="?",
        const=str(default_store()),
        type=Path,
        metavar="DIR",
        help=f"also write kraftkit's local store (default {default_store()})",
    )
    c.add_argument("--kraftkit-version", default=KRAFTKIT_VERSION, help=argparse.SUPPRESS)
    add_output_options(p)
    p.set_defaults(run=run)


def targets_from_args(args: argparse.Namespace) -> list[UnikraftTarget]:
    given = [n for n in ("kernel", "arch", "plat") if getattr(args, n) is not None]
    targets = []
    if given:
        missing = [f"--{n}" for n in ("kernel", "arch", "plat") if getattr(args, n) is None]
        if missing:
            raise UsageError(missing[0], "--kernel, --arch and --plat go together")
        initrd = None
        if args.initrd is not None:
            initrd = InitrdSource(file=args.initrd)
        elif args.rootfs is not None:
            initrd = InitrdSource(rootfs=args.rootfs, compression=args.initrd_compression)
        elif args.rootfs_image is not None:
            initrd = InitrdSource(image=parse_layout_ref(args.rootfs_image), compression=args.initrd_compression)
        targets.append(
            UnikraftTarget(
                plat=normalize_plat(args.plat),
                arch=normalize_arch(args.arch),
                kernel=args.kernel,
                kconfig=args.kconfig,
                initrd=initrd,
            )
        )
    else:
        for flag in ("kconfig", "initrd", "rootfs", "rootfs_image"):
            if getattr(args, flag) is not None:
                option = "--" + flag.replace("_", "-")
                raise UsageError(option, "needs --kernel, --arch and --plat (or use --target ...)")
    targets += [parse_target(s, initrd_compression=args.initrd_compression) for s in args.target]
    if args.initrd_spec is not None or args.keep_setuid or args.initrd_owner is not None:
        nodes = parse_node_spec(args.initrd_spec) if args.initrd_spec is not None else ()
        uid, gid = parse_owner(args.initrd_owner)
        targets = [
            replace(t, initrd=replace(t.initrd, nodes=nodes, keep_setuid=args.keep_setuid, uid=uid, gid=gid))
            if t.initrd is not None and t.initrd.file is None
            else t
            for t in targets
        ]
    return targets


def parse_owner(value: str | None) -> tuple[int, int]:
    if value is None:
        return 0, 0
    uid, sep, gid = value.partition(":")
    if not sep or not uid.isdigit() or not gid.isdigit():
        raise UsageError("--initrd-owner", f"{value!r} is not UID:GID (numbers)")
    return int(uid), int(gid)


def run(args: argparse.Namespace) -> int:
    labels = key_values(args.label, "--label")
    req = UnikraftImageRequest(
        targets=tuple(targets_from_args(args)),
        ref=args.tag,
        name=args.name,
        version=args.version,
        run=RunConfig(
            cmd=argv_list(args.cmd, "--cmd"),
            env=env_list(args.env),
            labels=tuple(sorted(labels.items())),
        ),
        replace=args.replace,
        kraftkit_store=args.kraftkit_store,
        kraftkit_version=args.kraftkit_version,
        includes=tuple(parse_layout_ref(i) for i in args.include),
    )
    bar = ProgressBar("unikraft-image")
    try:
        result = build_unikraft_image(args.out, req, progress=bar)
    finally:
        bar.close()
    name_output(args.out, result.ref, args.image_name)
    for b in result.built:
        print(f"{b.target} {b.manifest.digest}")
    for k in result.kept:
        assert k.platform is not None
        print(f"{k.platform.os}/{k.platform.architecture} {k.digest} (kept)")
    print(f"{args.out}:{result.ref} {result.index.digest} {result.name}")
    return 0
