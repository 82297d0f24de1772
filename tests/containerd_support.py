"""A private containerd (Debian's) for tests: its own root, state and socket under a temporary
directory, no CRI plugin, stopped by PID; ``ctr`` talks to it over that socket. Imports are
``--no-unpack`` (no snapshotter needed), so every platform's content can be checked."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CONFIG = """version = 2
root = "{root}/root"
state = "{root}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{root}/c.sock"
[ttrpc]
  address = "{root}/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"""


def have_containerd() -> bool:
    return shutil.which("containerd") is not None and shutil.which("ctr") is not None and os.geteuid() == 0


class Containerd:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "c.sock"

    def ctr(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", "layerforge-test", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"ctr {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def import_archive(self, archive: Path) -> subprocess.CompletedProcess[str]:
        return self.ctr("images", "import", "--no-unpack", "--all-platforms", archive)

    def image_names(self) -> dict[str, str]:
        """name -> target digest of every image in the namespace."""
        out = self.ctr("images", "list").stdout.splitlines()[1:]
        names = {}
        for line in out:
            fields = line.split()
            names[fields[0]] = next(f for f in fields if f.startswith("sha256:"))
        return names

    def remove_all(self) -> None:
        names = list(self.image_names())
        if names:
            self.ctr("images", "rm", *names)


@contextmanager
def containerd(tmp: Path) -> Iterator[Containerd]:
    root = tmp / "containerd"
    root.mkdir(parents=True)
    config = root / "config.toml"
    config.write_text(_CONFIG.format(root=root))
    log = open(root / "log.txt", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    daemon = Containerd(root)
    try:
        deadline = time.monotonic() + 30
        while daemon.ctr("version", check=False).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start: {(root / 'log.txt').read_text()[-2000:]}")
            time.sleep(0.1)
        yield daemon
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()
        subprocess.run(["umount", "-R", str(root)], capture_output=True, check=False)
