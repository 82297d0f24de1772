"""Store paths holding binaries for another machine, without a builder for it.

Debian's ``busybox-static:arm64`` (``scripts/test`` downloads it once into the test cache after
``dpkg --add-architecture arm64``) is unpacked with ``dpkg-deb -x`` and added to the Nix store
with ``nix-store --add-fixed --recursive sha256``: a fixed-output path, which is also the output
of a fixed-output derivation of that name and hash for any ``system``, so a Nix file can name
it as an ``aarch64-linux`` derivation that this machine never has to build.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.helpers import TEST_CACHE
from tests.nix_support import nix_env

DEB_CACHE = TEST_CACHE / "debs"
#: The applets the fixture closure links to busybox (what the tests run in images).
APPLETS = ("sh", "echo", "cat", "ls", "uname")
#: ELF e_machine values the tests look for.
EM_X86_64 = 0x3E
EM_AARCH64 = 0xB7


@dataclass(frozen=True)
class ForeignPath:
    store_path: str
    name: str
    #: The NAR's sha256 as Nix prints it (``sha256:BASE32``), the derivation's ``outputHash``.
    nar_hash: str

    def fixed_output_nix(self, system: str = "aarch64-linux") -> str:
        """A Nix expression for a derivation of ``system`` whose output is this store path."""
        algo, _, digest = self.nar_hash.partition(":")
        return (
            f'derivation {{ name = "{self.name}"; system = "{system}"; builder = "/bin/false"; '
            f'outputHashMode = "recursive"; outputHashAlgo = "{algo}"; outputHash = "{digest}"; }}'
        )


def _deb(package: str, arch: str) -> Path:
    debs = sorted(DEB_CACHE.glob(f"{package}_*_{arch}.deb"))
    assert debs, f"no {package}:{arch} .deb in {DEB_CACHE}: run ./scripts/test, which downloads it"
    return debs[-1]


@cache
def arm64_busybox() -> ForeignPath:
    """``/nix/store/...-busybox-static-arm64`` with ``bin/busybox`` (aarch64 ELF) and applet links."""
    name = "busybox-static-arm64"
    with tempfile.TemporaryDirectory(prefix="lf-foreign-") as tmp:
        unpacked = Path(tmp) / "deb"
        subprocess.run(["dpkg-deb", "-x", str(_deb("busybox-static", "arm64")), str(unpacked)], check=True,
                       timeout=60)  # fmt: skip
        out = Path(tmp) / name
        (out / "bin").mkdir(parents=True)
        (out / "bin" / "busybox").write_bytes((unpacked / "bin" / "busybox").read_bytes())
        (out / "bin" / "busybox").chmod(0o555)
        for applet in APPLETS:
            (out / "bin" / applet).symlink_to("busybox")
        assert elf_machine(out / "bin" / "busybox") == EM_AARCH64
        store_path = _nix_store("--add-fixed", "--recursive", "sha256", str(out))
    return ForeignPath(store_path, name, _nix_store("--query", "--hash", store_path))


def _nix_store(*args: str) -> str:
    proc = subprocess.run(["nix-store", *args], capture_output=True, text=True, env=nix_env(), timeout=120,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def elf_machine(path: Path) -> int | None:
    """The ELF header's ``e_machine`` of ``path``, or None for a file that is no ELF."""
    head = path.read_bytes()[:20]
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    (machine,) = struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)
    return int(machine)
