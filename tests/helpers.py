"""Shared test helpers: running the CLI, describing trees, validating against image-spec."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import select
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

#: What tests and benchmarks keep between runs (a kernel, the nydus-image oracle), where
#: scripts/test builds it: ${XDG_CACHE_HOME:-~/.cache}/layerforge-test.
TEST_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "layerforge-test"


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``TEST_CACHE/NAME.lock``: one test process at a time (the suite
    runs in several with pytest-xdist) fills a machine-wide cache."""
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    with open(TEST_CACHE / f"{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


IMAGE_SPEC_SCHEMAS = Path("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema")
RUNTIME_SPEC_SCHEMAS = Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")


def layerforge_bin() -> str:
    exe = Path(sys.executable).parent / "layerforge"
    if not exe.exists():
        found = shutil.which("layerforge")
        assert found, "the layerforge command is not installed in this environment"
        return found
    return str(exe)


def run_cli(*args: str | os.PathLike[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [layerforge_bin(), *map(str, args)], check=False, capture_output=True, text=True, timeout=600, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"layerforge {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run(*cmd: str | os.PathLike[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*map(str, cmd)], check=False, capture_output=True, text=True, timeout=600, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def snapshot(root: Path) -> dict[str, Any]:
    """Everything a layer must preserve about a tree: type, permission bits, content hash,
    symlink target, device numbers, and which paths are hard links of each other."""
    entries: dict[str, Any] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            st = p.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                entries[rel] = ("symlink", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                entries[rel] = ("dir", mode)
            elif stat.S_ISREG(st.st_mode):
                entries[rel] = ("file", mode, hashlib.sha256(p.read_bytes()).hexdigest())
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISFIFO(st.st_mode):
                entries[rel] = ("fifo", mode)
            elif stat.S_ISCHR(st.st_mode):
                entries[rel] = ("char", mode, os.major(st.st_rdev), os.minor(st.st_rdev))
            elif stat.S_ISBLK(st.st_mode):
                entries[rel] = ("block", mode, os.major(st.st_rdev), os.minor(st.st_rdev))
            else:
                entries[rel] = ("other", mode)
    links = sorted(sorted(group) for group in inodes.values() if len(group) > 1)
    return {"entries": entries, "hardlinks": links}


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path: its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def blob_path(layout: Path, digest: str) -> Path:
    algo, hexd = digest.split(":")
    return layout / "blobs" / algo / hexd


def read_json_blob(layout: Path, digest: str) -> Any:
    return json.loads(blob_path(layout, digest).read_bytes())


def index_entry(layout: Path, ref: str) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_bytes())
    for m in index["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            return dict(m)
    raise AssertionError(f"no ref {ref} in {layout}")


def image_parts(layout: Path, ref: str = "latest") -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(index entry, manifest, config) of a tagged image."""
    entry = index_entry(layout, ref)
    manifest = read_json_blob(layout, entry["digest"])
    config = read_json_blob(layout, manifest["config"]["digest"])
    return entry, manifest, config


def verify_blobs(layout: Path) -> int:
    """Every file under blobs/sha256 holds exactly the content its name says. Returns the count."""
    n = 0
    for p in (layout / "blobs" / "sha256").iterdir():
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        assert h.hexdigest() == p.name, f"blob {p} does not match its name"
        n += 1
    return n


@cache
def _registry() -> referencing.Registry[Any]:
    resources = []
    for f in IMAGE_SPEC_SCHEMAS.glob("*.json"):
        contents = json.loads(f.read_text())
        resource = referencing.jsonschema.DRAFT4.create_resource(contents)
        # Schemas refer to siblings relative to their ids, which live under two bases.
        for base in ("https://opencontainers.org/schema/", "https://opencontainers.org/schema/image/"):
            resources.append((base + f.name, resource))
        if "id" in contents:
            resources.append((contents["id"], resource))
    return referencing.Registry().with_resources(resources)


def validate_schema(obj: Any, schema_file: str) -> None:
    schema = json.loads((IMAGE_SPEC_SCHEMAS / schema_file).read_text())
    validator = jsonschema.Draft4Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(obj), key=str)
    assert not errors, f"{schema_file}: " + "; ".join(e.message for e in errors)


@cache
def _runtime_registry() -> referencing.Registry[Any]:
    return referencing.Registry().with_resources(
        (f.resolve().as_uri(), referencing.jsonschema.DRAFT4.create_resource(json.loads(f.read_text())))
        for f in RUNTIME_SPEC_SCHEMAS.glob("*.json")
    )


def validate_runtime_spec(config: Any) -> None:
    """Validate a bundle's config.json against runtime-spec's schema (refs resolve by file URI)."""
    root = {"$ref": (RUNTIME_SPEC_SCHEMAS / "config-schema.json").resolve().as_uri()}
    validator = jsonschema.Draft4Validator(root, registry=_runtime_registry())
    errors = sorted(validator.iter_errors(config), key=str)
    assert not errors, "runtime-spec: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def assert_one_line_error(proc: object, *needles: str) -> None:
    assert proc.returncode != 0, proc.stdout  # type: ignore[attr-defined]
    err = proc.stderr.strip()  # type: ignore[attr-defined]
    assert "\n" not in err, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


def on_a_terminal(argv: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run ``argv`` with a new pty as stdin, stdout and stderr; its exit status and everything
    it wrote, read until the pty's last writer has gone (bounded by ``timeout``)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the pty
                break
            if not data:
                break
            chunks.append(data)
        else:
            proc.kill()
            raise AssertionError(f"{argv} did not finish within {timeout:g} s: {b''.join(chunks)!r}")
        return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
