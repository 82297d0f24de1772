"""Running images with a real container runtime: podman with runc, as users meet them (and
OCI runtime bundles with runc itself).

The flags are those ../shared/docs/environment.md gives: a private storage (``--root`` and
``--runroot`` under a temporary directory, the ``vfs`` driver), ``cgroupfs``, no events, no
network, ``--runtime runc`` (crun refuses this host's cgroup layout) and explicit ulimits
(podman's default RLIMIT_NOFILE exceeds the host's hard limit). podman names an ``oci:`` image
after its path, which must then be lowercase: layouts are reached through a lowercase symlink.

Every run is bounded by a timeout and has a name; its container is removed by that name
whatever happens. ``close`` (or leaving the ``with`` block) removes every container of the
storage, unmounts what podman left mounted under it and deletes it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

PODMAN = "podman"
#: A path podman can name an image after (the repository grammar: lowercase components).
_REPOSITORY_PATH = re.compile(r"^(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$")
RUNTIME = "runc"
#: The flags of ``run`` this host needs, one argument each (as `layerforge run --run-option=` takes them).
RUN_FLAGS = ("--network=none", f"--runtime={RUNTIME}", "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024")


@dataclass(frozen=True)
class Probe:
    """What a process in the container saw: its ids, working directory and environment."""

    uid: int
    gid: int
    cwd: str
    env: dict[str, str]


class Podman:
    def __init__(self, parent: Path | None = None, timeout: float = 120.0) -> None:
        parent = Path(parent or tempfile.gettempdir()).resolve()
        if not _REPOSITORY_PATH.match(parent.as_posix()):
            parent = Path("/tmp")
        self.root = parent / f"lf-podman-{uuid.uuid4().hex[:12]}"
        self.root.mkdir(mode=0o700)
        self.timeout = timeout
        self.links = self.root / "images"
        self.links.mkdir()

    def global_flags(self) -> list[str]:
        """podman's options before its subcommand (this storage), one argument each."""
        return [
            f"--root={self.root / 'storage'}", f"--runroot={self.root / 'run'}", "--storage-driver=vfs",
            "--cgroup-manager=cgroupfs", "--events-backend=none",
        ]  # fmt: skip

    def base_argv(self) -> list[str]:
        return [PODMAN, *self.global_flags()]

    def layerforge_flags(self) -> list[str]:
        """Options of `layerforge load`/`run` that use this storage (and this host's run flags)."""
        return ["--runtime=podman", *(f"--runtime-option={f}" for f in self.global_flags())]

    def pants_env(self) -> dict[str, str]:
        """Environment that makes `pants run` use this storage through [layerforge]'s runtime
        options (and this host's run flags)."""
        return {
            "PANTS_LAYERFORGE_RUNTIME": "podman",
            "PANTS_LAYERFORGE_RUNTIME_OPTIONS": json.dumps(self.global_flags()),
            "PANTS_LAYERFORGE_RUN_OPTIONS": json.dumps(list(RUN_FLAGS)),
        }

    def image_names(self) -> dict[str, str]:
        """``repository:tag`` -> image ID of every named image in this storage."""
        out = subprocess.run([*self.base_argv(), "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return dict(line.split() for line in out.stdout.splitlines() if line.strip())

    def image_ref(self, layout: Path, ref: str) -> str:
        """``oci:/lowercase/path:REF`` for ``layout``, through a symlink podman can name."""
        link = self.links / f"l{uuid.uuid4().hex}"
        link.symlink_to(Path(layout).resolve())
        return f"oci:{link}:{ref}"

    def run(self, layout: Path, ref: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """``podman run --rm`` the image ``ref`` of the OCI layout ``layout`` (see :meth:`run_image`)."""
        return self.run_image(self.image_ref(layout, ref), *args, **kw)

    def pull_loopback(self, reference: str) -> str:
        """``podman pull`` ``HOST:PORT/REPO:TAG`` from a plain-HTTP registry on 127.0.0.1 (for this
        machine's platform, from an index); the pulled image's id."""
        assert reference.startswith("127.0.0.1:"), reference
        argv = [*self.base_argv(), "pull", "--quiet", "--tls-verify=false", f"docker://{reference}"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False,
                              stdin=subprocess.DEVNULL)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().splitlines()[-1]

    def run_archive(self, archive: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """``podman run --rm`` the image of a ``docker load`` archive."""
        return self.run_image(f"docker-archive:{Path(archive).resolve()}", *args, **kw)

    def run_image(
        self,
        image: str,
        *args: str,
        entrypoint: str | None = None,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        volumes: Sequence[str] = (),
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``podman run --rm IMAGE ARGS`` (``image`` a transport reference: ``oci:DIR:REF``,
        ``docker-archive:FILE``) with the image's own entrypoint and config unless overridden;
        the container is removed whatever happens."""
        name = f"lf-{uuid.uuid4().hex[:16]}"
        argv = [*self.base_argv(), "run", "--rm", "--quiet", "--name", name, *RUN_FLAGS]
        if entrypoint is not None:
            argv += ["--entrypoint", json.dumps([entrypoint])]
        if user is not None:
            argv += ["--user", user]
        if workdir is not None:
            argv += ["--workdir", workdir]
        for k, v in sorted((env or {}).items()):
            argv += ["--env", f"{k}={v}"]
        for v in volumes:
            argv += ["--volume", v]
        argv += [image, *args]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout or self.timeout,
                                  check=False, stdin=subprocess.DEVNULL)  # fmt: skip
        finally:
            self._remove(name)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"podman run {image} {list(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def run_bundle(
        self, bundle: Path, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``runc run`` an OCI runtime bundle (``config.json`` + ``rootfs/``) as it is; the
        container is deleted whatever happens."""
        name = f"lf-{uuid.uuid4().hex[:16]}"
        state = ["runc", "--root", str(self.root / "runc")]
        try:
            proc = subprocess.run([*state, "run", "--bundle", str(bundle), name], capture_output=True, text=True,
                                  timeout=timeout or self.timeout, check=False, stdin=subprocess.DEVNULL)  # fmt: skip
        finally:
            subprocess.run([*state, "delete", "--force", name], capture_output=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"runc run {bundle}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def probe(self, layout: Path, ref: str, busybox: str, **kw: Any) -> Probe:
        """Run ``busybox`` (a path in the image) to report ids, working directory and
        environment, with the image's own user, workdir and env unless ``kw`` overrides them."""
        return parse_probe(self.run(layout, ref, "sh", "-c", probe_script(busybox), entrypoint=busybox, **kw).stdout)

    def _remove(self, name: str) -> None:
        subprocess.run(
            [*self.base_argv(), "rm", "--force", "--time", "0", "--ignore", name],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip

    def close(self) -> None:
        if not self.root.exists():
            return
        subprocess.run([*self.base_argv(), "rm", "--all", "--force", "--time", "0"], capture_output=True, timeout=60,
                       check=False)  # fmt: skip
        for mount in sorted(_mounts_under(self.root), reverse=True):
            subprocess.run(["umount", "--lazy", mount], capture_output=True, timeout=30, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Podman:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def probe_script(busybox: str) -> str:
    """A ``sh -c`` script for ``busybox sh`` printing what :func:`parse_probe` reads."""
    return f"{busybox} id -u; {busybox} id -g; {busybox} pwd; {busybox} env -0"


def parse_probe(out: str) -> Probe:
    uid, gid, cwd, env = out.split("\n", 3)
    pairs = (e.partition("=") for e in env.split("\0") if e)
    return Probe(int(uid), int(gid), cwd, {k: v for k, _, v in pairs})


def _mounts_under(root: Path) -> list[str]:
    """Mount points below ``root`` (podman's shm and overlay mounts of interrupted runs)."""
    prefix = root.as_posix() + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    return [p for p in points if p.startswith(prefix)]


def expected_env(config: Mapping[str, Any]) -> dict[str, str]:
    """The image config's ``Env`` as a dict (what the container must at least see)."""
    return dict(e.partition("=")[::2] for e in config.get("config", {}).get("Env") or [])


def assert_runs_as_configured(
    probe: Probe, config: Mapping[str, Any], *, uid: int = 0, gid: int = 0, home: str | None = None
) -> None:
    """The process ran with the ids expected of the image's ``User``, in its ``WorkingDir``
    (``/`` by default), with every ``Env`` entry of the config (and ``HOME``, if given)."""
    assert (probe.uid, probe.gid) == (uid, gid), probe
    assert probe.cwd == (config.get("config", {}).get("WorkingDir") or "/"), probe
    for k, v in expected_env(config).items():
        assert probe.env.get(k) == v, (k, probe.env)
    if home is not None:
        assert probe.env.get("HOME") == home, probe.env
