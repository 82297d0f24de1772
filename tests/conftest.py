"""Fixtures shared by the test suite.

The suite uses real tools (skopeo, umoci, GNU tar, gzip, zstd, pigz); `scripts/test` installs
them. A missing tool is a test failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nix_support import NIX_CONFIG
from tests.private_registry_support import USER, PrivateRegistry
from tests.push_support import SECRET
from tests.registry_support import FaultProxy, Registry
from tests.runtime_support import Podman

REQUIRED_TOOLS = ("skopeo", "umoci", "tar", "gzip", "zstd", "pigz", "setpriv", "cpio", "qemu-system-x86_64", "podman",
                  "runc")  # fmt: skip


#: The fast tier, ``scripts/test -m "not slow"``: the modules below (in-process unit tests and
#: the CLI's argument contract), well under a minute together. Every other module is marked
#: ``slow`` here, in one place: most start registries, container runtimes, Nix, Pants, qemu
#: or many CLI processes, and a new module is slow until it is listed (so the fast tier stays
#: fast whatever other changes add).
FAST_MODULES = frozenset({
    "tests/test_model.py", "tests/test_nix_layering.py", "tests/test_progress.py", "tests/test_whiteouts.py",
    "tests/test_compression.py", "tests/test_layer_tar.py", "tests/test_properties.py", "tests/test_cli.py",
    "tests/test_pants_rule_modules.py", "tests/test_option_rules.py", "tests/test_pants_rules.py",
    "tests/test_nix_jobs.py", "tests/test_remote_tag.py", "tests/test_signing_keys.py",
})  # fmt: skip
#: Tests of fast modules measured at several seconds each (``--durations``).
SLOW_TESTS = frozenset({
    "tests/test_properties.py::test_unpacking_random_layers_never_touches_outside",
    "tests/test_properties.py::test_json_readers_give_a_model_or_a_layerforge_error",
})  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        rel = Path(str(item.path)).relative_to(root).as_posix()
        if rel not in FAST_MODULES or f"{rel}::{item.name.split('[')[0]}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _tools_present() -> None:
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    assert not missing, f"missing tools {missing}: run ./scripts/test, which installs them"


@pytest.fixture(autouse=True)
def _clean_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    """podman + runc with a storage of the test module's own, removed at the module's end."""
    with Podman() as p:
        yield p


@pytest.fixture
def nix_cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The tests' NIX_CONFIG and a layer cache of the test's own, for `layerforge nix-*` runs."""
    monkeypatch.setenv("NIX_CONFIG", NIX_CONFIG)
    monkeypatch.setenv("LAYERFORGE_CACHE_DIR", str(tmp_path / "cache"))


def make_sample_tree(root: Path) -> Path:
    """A tree with every case a layer must get right."""
    root.mkdir(parents=True)
    (root / "bin").mkdir()
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc" / "config").write_text("key=value\n")
    (root / "etc" / "private").write_text("secret-ish\n")
    (root / "etc" / "private").chmod(0o600)
    (root / "empty-dir").mkdir()
    (root / "empty-file").write_bytes(b"")
    # Long names: a component of 200 bytes, and a path far beyond ustar's 255 bytes.
    deep = root / ("d" * 120) / ("e" * 120) / ("f" * 120)
    deep.mkdir(parents=True)
    (deep / ("long-name-" + "x" * 190)).write_text("deep\n")
    # Non-ASCII names.
    (root / "données").mkdir()
    (root / "données" / "日本語.txt").write_text("こんにちは\n")
    (root / "emoji-🙂").write_text("smile\n")
    # Symlinks: relative, absolute, dangling, to a directory, with a long target.
    (root / "bin" / "alias").symlink_to("tool")
    (root / "abs-link").symlink_to("/etc/config")
    (root / "dangling").symlink_to("does/not/exist")
    (root / "dirlink").symlink_to("données")
    (root / "longlink").symlink_to("t" * 150)
    # Hard links (three names, one inode), across directories.
    (root / "data").mkdir()
    blob = root / "data" / "blob.bin"
    blob.write_bytes(os.urandom(300_000))
    os.link(blob, root / "data" / "blob-hardlink.bin")
    os.link(blob, root / "bin" / "blob-elsewhere")
    # A bigger compressible file spanning several pipeline chunks.
    (root / "data" / "big.txt").write_bytes(b"layerforge line of text\n" * 200_000)
    # A fifo, and a setuid binary (setuid is dropped unless asked).
    os.mkfifo(root / "fifo")
    su = root / "bin" / "su"
    su.write_bytes(b"\x7fELF fake")
    su.chmod(0o4755)
    return root


@pytest.fixture
def sample_tree(tmp_path: Path) -> Path:
    return make_sample_tree(tmp_path / "rootfs")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A docker-registry without auth on 127.0.0.1, stopped after the test."""
    reg = Registry(tmp_path / "registry").start()
    yield reg
    reg.stop()


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    """A counting proxy (add :class:`~tests.registry_support.Rule` s for hostile answers) in
    front of :func:`registry`."""
    p = FaultProxy(registry.host).start()
    yield p
    p.stop()


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    """The commands' environment: a home, Docker config and cache of the test's own; no login,
    no trust from the machine's environment."""
    home = tmp_path / "home"
    home.mkdir()
    out = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR")
    }
    out.update(HOME=str(home), DOCKER_CONFIG=str(tmp_path / "docker"), LAYERFORGE_CACHE_DIR=str(tmp_path / "cache"))
    out.pop("LAYERFORGE_REGISTRY_TIMEOUT", None)
    return out


@pytest.fixture
def corp(tmp_path: Path) -> Iterator[PrivateRegistry]:
    """A private registry (tests/private_registry_support.py): HTTPS from a CA of its own under
    a host name, htpasswd user ``alice``; stopped after the test."""
    reg = PrivateRegistry(tmp_path / "private", {USER: SECRET}).start()
    yield reg
    reg.stop()
