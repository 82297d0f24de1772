"""Real Pants runs in temporary build roots with the layerforge backend.

The repository's ``./pants`` bootstraps everything once (Pants venv, the pex tool, the wheel,
the tool lockfile); test build roots reuse it through ``PANTS_CONFIG_FILES``.

Another Pants (by hand, outside CI: a current one built from source): ``LAYERFORGE_TEST_PANTS``
names its executable and ``LAYERFORGE_TEST_PANTS_VERSION`` its version (written as the build
roots' ``pants_version``); ``LAYERFORGE_TEST_PANTS_CONFIG`` is an optional config file read
last (the machine's own settings for it, such as ``[pex-cli]``). Unset: the bootstrapped 2.17.1. Which layerforge
processes actually ran is read from ``--keep-sandboxes=always`` (one line per executed process).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

from tests.helpers import machine_lock
from tests.nix_support import NIX_CONFIG

REPO = Path(__file__).resolve().parent.parent
BOOT = REPO / ".pants-bootstrap"
BOOTSTRAPPED_VERSION = "2.17.1"
#: The Pants the tests run (see the module's docstring).
PANTS_VERSION = os.environ.get("LAYERFORGE_TEST_PANTS_VERSION") or BOOTSTRAPPED_VERSION
PANTS_EXE = os.environ.get("LAYERFORGE_TEST_PANTS", "")
PANTS_CONFIG = os.environ.get("LAYERFORGE_TEST_PANTS_CONFIG", "")
OUR_PROCESSES = ("Plan the layers of ", "Build layer", "Assemble the image of ", "Push ")
#: The Nix evaluations of nix_oci_image targets, which run on every Pants run by design.
EVALUATIONS = ("Evaluate the Nix derivations of ",)
_PRESERVED = re.compile(r"Preserving local process execution dir (\S+) for (.*)$")


@cache
def bootstrap() -> Path:
    """Run ./pants once so its venv, pex tool, wheel and lockfile exist; the pants binary
    (``LAYERFORGE_TEST_PANTS`` if set)."""
    assert bool(PANTS_EXE) == (PANTS_VERSION != BOOTSTRAPPED_VERSION), (
        "set LAYERFORGE_TEST_PANTS and LAYERFORGE_TEST_PANTS_VERSION together"
    )
    with machine_lock("pants-bootstrap"):
        proc = _run_bootstrap()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    exe = Path(PANTS_EXE) if PANTS_EXE else BOOT / f"pants-{BOOTSTRAPPED_VERSION}" / "bin" / "pants"
    assert exe.is_file(), exe
    return exe


def native_client(pants: Path) -> Path | None:
    """The native client ./pants installs beside the bootstrapped Pants (see ./pants), which
    hands a command to a running pantsd as users' runs do; None for another Pants."""
    client = pants.parent / "pants-native-client"
    return client if not PANTS_EXE and client.is_file() else None


def _run_bootstrap() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "pants"), "--no-pantsd", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


class PantsRepo:
    def __init__(self, root: Path, extra_toml: str = "") -> None:
        self.root = root
        self.pants = bootstrap()
        root.mkdir(parents=True, exist_ok=True)
        toml = (
            (REPO / "pants.toml")
            .read_text()
            .replace('"!/build-support/layerforge-tool.lock"', '"!/build-support/layerforge-tool.lock", "/.cache/"')
            .replace(f'pants_version = "{BOOTSTRAPPED_VERSION}"', f'pants_version = "{PANTS_VERSION}"')
        )
        (root / "pants.toml").write_text(toml + "\n" + extra_toml)
        (root / "BUILD").write_text((REPO / "BUILD").read_text())
        (root / "build-support").mkdir(exist_ok=True)
        shutil.copy(REPO / "build-support" / "layerforge-tool.lock", root / "build-support" / "layerforge-tool.lock")
        # A copy, not a symlink: pantsd cannot watch a link that points outside the build root.
        shutil.copytree(REPO / "pants-plugins", root / "pants-plugins", ignore=shutil.ignore_patterns("__pycache__"))
        self.store = root / ".cache" / "store"
        self.named = root / ".cache" / "named"

    def write(self, path: str, content: str) -> None:
        p = self.root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)

    def run(
        self,
        *args: str,
        store: Path | None = None,
        named: Path | None = None,
        env: dict[str, str] | None = None,
        pantsd: bool = False,
        wrap: Callable[..., list[str]] | None = None,
        scripts: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run Pants here; ``wrap(*argv)``, if given, is the command that runs it (a namespace).
        ``scripts`` receives the ``__run.sh`` of every process that ran, by description."""
        argv = [
            *self.client(pantsd), "--keep-sandboxes=always", "--stats-log",
            f"--local-store-dir={store or self.store}", f"--named-caches-dir={named or self.named}", *args,
        ]  # fmt: skip
        proc = subprocess.run(
            wrap(*argv) if wrap else argv,
            cwd=self.root,
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=1200,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        for line in proc.stderr.splitlines():  # keep /tmp clean: sandboxes were kept only to be counted
            m = _PRESERVED.search(line)
            if m:
                if scripts is not None:
                    with contextlib.suppress(OSError):
                        scripts[m.group(2)] = (Path(m.group(1)) / "__run.sh").read_text()
                shutil.rmtree(m.group(1), ignore_errors=True)
        return proc

    def client(self, pantsd: bool) -> list[str]:
        """The command a run starts with: with pantsd, the native client ./pants runs (it
        execs :attr:`pants` when no pantsd of these options runs), else Pants itself."""
        client = native_client(self.pants) if pantsd else None
        return [str(client or self.pants), "--pantsd" if pantsd else "--no-pantsd"]

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment Pants runs with here: this build root's config and the bootstrap's."""
        return {
            **os.environ,
            "NO_SCIE_WARNING": "1",
            "_PANTS_SERVER_EXE": str(self.pants),  # what the native client falls back to
            "NIX_CONFIG": NIX_CONFIG,
            "PANTS_CONFIG_FILES": str(
                [
                    str(self.root / "pants.toml"),
                    str(BOOT / "pants.bootstrap.toml"),
                    *([PANTS_CONFIG] if PANTS_CONFIG else []),
                ]
            ),
            **(extra or {}),
        }

    def stop_pantsd(self) -> None:
        """Stop the pantsd that ``run(..., pantsd=True)`` started for this build root, by the PID
        it recorded there (after checking that the process is that pantsd), and wait for it."""
        for pid_file in (self.root / ".pids").glob("*/pantsd/pid"):
            try:
                pid = int(pid_file.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except (OSError, ValueError):
                continue
            if "pantsd" not in cmdline or str(self.root) not in cmdline:
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)

    @staticmethod
    def executed(proc: subprocess.CompletedProcess[str], kinds: tuple[str, ...] = OUR_PROCESSES) -> list[str]:
        """Descriptions of the layerforge processes that ran (not those answered by a cache)."""
        out = []
        for line in proc.stderr.splitlines():
            m = _PRESERVED.search(line)
            if m and m.group(2).startswith(kinds):
                out.append(m.group(2))
        return sorted(out)

    @staticmethod
    def layers_built(description: str) -> int:
        """How many layers a layer process builds, from its description ("Build layer 4/4 of
        ...", "Build layers 1-3/4 of ...")."""
        m = re.match(r"Build layers? (\d+)(?:-(\d+))?/\d+ of ", description)
        assert m, description
        return int(m.group(2) or m.group(1)) - int(m.group(1)) + 1

    @staticmethod
    def evaluated(proc: subprocess.CompletedProcess[str]) -> list[str]:
        """Descriptions of the Nix evaluations that ran."""
        return PantsRepo.executed(proc, EVALUATIONS)

    @staticmethod
    def counter(proc: subprocess.CompletedProcess[str], name: str) -> int:
        m = re.search(rf"^\s*{name}: (\d+)$", proc.stderr, re.MULTILINE)
        return int(m.group(1)) if m else 0
