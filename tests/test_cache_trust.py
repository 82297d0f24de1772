"""Cache files decide nothing unless they are this push's or this layer's, and this user's
alone (python/layerforge/trust/cache_files.py): a push receipt is used only for the push it
names, a layer cache record only for the layer it names, a cached blob enters an image only
when it matches its digest, and a receipt, record, blob, known-blobs file or cache directory
another user owns, or others may write, is ignored with one warning line and never written
into. Against real docker-registries on loopback, the native ``layerforge`` command (which
must not answer: the Python part is ``/bin/false`` where it says so) and real Nix."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerforge.registry.client import MANIFEST_ACCEPT
from layerforge.registry.receipt import receipt_key
from tests.helpers import image_parts, run, run_cli, verify_blobs
from tests.nix_support import build, nix_image
from tests.push_support import isolate, multi_layer_image, push
from tests.registry_support import FaultProxy, Registry
from tests.runtime_support import Podman

NOBODY = 65534


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def second_registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "second-registry").start()
    yield reg
    reg.stop()


@pytest.fixture
def shared_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache directory other users can reach (the test's own tmp_path is private to root)."""
    top = Path(tempfile.mkdtemp(prefix="layerforge-shared-", dir="/tmp"))
    top.chmod(0o755)
    cache = top / "cache"
    monkeypatch.setenv("LAYERFORGE_CACHE_DIR", str(cache))
    yield cache
    shutil.rmtree(top)


def cache_dir() -> Path:
    return Path(os.environ["LAYERFORGE_CACHE_DIR"])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def chown_all(path: Path, uid: int) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, uid, follow_symlinks=False)


def write_as_nobody(path: Path, data: bytes) -> None:
    """``path`` written by another user (setpriv to nobody), as a shared cache lets them."""
    run("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
        "dd", f"of={path}", "status=none", input=data.decode())  # fmt: skip
    assert path.stat().st_uid == NOBODY


def warnings(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "warning:" in line]


def manifest_status(host: str, repository: str, tag: str) -> int:
    request = urllib.request.Request(
        f"http://{host}/v2/{repository}/manifests/{tag}", method="HEAD", headers={"Accept": MANIFEST_ACCEPT}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return e.code


def native_only(*args: object) -> subprocess.CompletedProcess[str]:
    """``layerforge push ARGS`` that only the native command can answer: its Python part fails."""
    return run_cli("push", *map(str, args), check=False, env={**os.environ, "LAYERFORGE_PYTHON": "/bin/false"})


def receipt_of(argv: list[str]) -> Path:
    return cache_dir() / "push-receipts" / f"{receipt_key(argv, os.environ)}.json"


def forged_for(argv: list[str], genuine: dict[str, object]) -> bytes:
    """A receipt for the push ``argv`` made from the ``genuine`` receipt of another push: its
    key and command line are ``argv``'s, all it states is the other push's."""
    return json.dumps({**genuine, "key": receipt_key(argv, os.environ), "argv": argv}).encode()


# -- push receipts ---------------------------------------------------------------------------


def test_a_receipt_names_its_push_and_is_private_even_under_a_lax_umask(tmp_path: Path, registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    argv = [f"{src}:v1", f"{registry.host}/team/app:1", "--tag", "stable"]
    first = run_cli("push", *argv, env=os.environ.copy(), umask=0o002)
    assert "(pushed)" in first.stdout and not warnings(first)
    receipt = receipt_of(argv)
    doc = json.loads(receipt.read_bytes())
    assert doc["key"] == receipt.stem and doc["argv"] == argv
    assert (doc["layout"], doc["registry"], doc["repository"], doc["tags"]) == (
        str(src), registry.host, "team/app", ["1", "stable"],
    )  # fmt: skip
    assert {p.name: mode(p) for p in (cache_dir(), receipt.parent)} == {"cache": 0o700, "push-receipts": 0o700}
    assert mode(receipt) == mode(cache_dir() / "registry-blobs.json") == 0o600
    again = native_only(*argv)
    assert again.returncode == 0 and again.stdout.count("(unchanged)") == 2, again.stderr


def test_a_receipt_naming_another_push_is_not_used(
    tmp_path: Path, registry: Registry, second_registry: Registry
) -> None:
    """The finding: a receipt under the key of the push asked for, this user's own file, but
    made from the receipt of a push the registry holds, must not make the native command say
    "(unchanged)" for an image the registry does not have; Python then really pushes it."""
    src, other = multi_layer_image(tmp_path, layers=2), multi_layer_image(tmp_path / "other", layers=2)
    done = [f"{src}:v1", f"{registry.host}/team/app:1"]
    push(*done)
    genuine = json.loads(receipt_of(done).read_bytes())
    asked_for = {
        "another registry": [f"{src}:v1", f"{second_registry.host}/team/app:1"],
        "another repository": [f"{src}:v1", f"{registry.host}/team/new:1"],
        "another tag": [f"{src}:v1", f"{registry.host}/team/app:2"],
        "one more tag": [*done, "--tag", "2"],
        "another layout": [f"{other}:v1", f"{registry.host}/team/app:1"],
    }
    for case, asked in asked_for.items():
        forged = receipt_of(asked)
        forged.write_bytes(forged_for(asked, genuine))
        forged.chmod(0o600)
        proc = native_only(*asked)
        assert proc.returncode != 0 and "(unchanged)" not in proc.stdout, (case, proc.stdout)
    assert manifest_status(second_registry.host, "team/app", "1") == 404
    assert manifest_status(registry.host, "team/new", "1") == manifest_status(registry.host, "team/app", "2") == 404
    assert native_only(*done).returncode == 0, "the genuine receipt still answers its own push"

    # The Python push, native answer off or as the command runs it, pushes what was asked.
    python = run_cli("push", *asked_for["another registry"], env={**os.environ, "LAYERFORGE_PUSH_FAST_PATH": "0"})
    assert "(pushed)" in python.stdout and manifest_status(second_registry.host, "team/app", "1") == 200
    layout = push(*asked_for["another layout"])
    assert f"{image_parts(other, 'v1')[0]['digest']} (pushed)" in layout.stdout, layout.stdout
    assert not warnings(python) and not warnings(layout)


def test_a_receipt_of_another_user_or_others_may_write_is_not_read(tmp_path: Path, registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    argv = [f"{src}:v1", f"{registry.host}/team/app:1"]
    push(*argv)
    receipt = receipt_of(argv)
    assert native_only(*argv).returncode == 0
    for change, shown in (
        (lambda: os.chown(receipt, NOBODY, NOBODY), f"belongs to uid 65534, not to this user (uid {os.geteuid()})"),
        (lambda: receipt.chmod(0o666), "is writable by other users (mode 0666)"),
    ):
        change()
        assert native_only(*argv).returncode != 0, shown
        # The push (Python's) says so in one line and replaces it with one of its own.
        proc = push(*argv)
        assert "(unchanged)" in proc.stdout
        assert warnings(proc) == [f"layerforge: warning: ignoring the push receipt: '{receipt}' {shown}"]
        assert receipt.stat().st_uid == os.geteuid() and mode(receipt) == 0o600
        assert native_only(*argv).returncode == 0
    os.chown(receipt.parent, NOBODY, NOBODY)
    assert native_only(*argv).returncode != 0
    receipt.unlink()
    proc = push(*argv)
    assert warnings(proc) == [
        f"layerforge: warning: ignoring the push receipt: '{receipt.parent}' belongs to uid 65534, not to this user "
        f"(uid {os.geteuid()})"
    ]
    assert not receipt.exists(), "nothing written into another user's directory"


def test_a_shared_cache_directory_decides_nothing(
    tmp_path: Path, shared_cache: Path, proxy: FaultProxy, second_registry: Registry
) -> None:
    """A cache directory others may write (or another user's) is not read: neither the receipt
    another user put there (setpriv to nobody) nor this user's own, nor the known-blobs memory
    (no mount from it); nothing is written into it; one warning line says why."""
    src = multi_layer_image(tmp_path, layers=2)
    done = [f"{src}:v1", f"{proxy.host}/team/app:1"]
    push(*done)
    genuine = json.loads(receipt_of(done).read_bytes())
    known = (shared_cache / "registry-blobs.json").read_bytes()

    shared_cache.chmod(0o1777)
    (shared_cache / "push-receipts").chmod(0o1777)
    asked = [f"{src}:v1", f"{second_registry.host}/team/app:1"]
    write_as_nobody(receipt_of(asked), forged_for(asked, genuine))
    proc = native_only(*asked)
    assert proc.returncode != 0 and "(unchanged)" not in proc.stdout, proc.stdout
    assert native_only(*done).returncode != 0, "not even this user's receipt"

    proxy.log.clear()
    before = sorted((str(p), p.stat().st_mtime_ns) for p in shared_cache.rglob("*"))
    other = push(f"{src}:v1", f"{proxy.host}/team/other:1")
    assert "(pushed)" in other.stdout and "0 mounted" in other.stderr, other.stderr
    assert not any("mount=" in request for request in proxy.log), "no mount from a shared known-blobs file"
    assert warnings(other) == [
        f"layerforge: warning: ignoring the known-blobs cache: '{shared_cache}' is writable by other users (mode 1777)"
    ]
    assert sorted((str(p), p.stat().st_mtime_ns) for p in shared_cache.rglob("*")) == before, "nothing written"
    assert (shared_cache / "registry-blobs.json").read_bytes() == known

    # Another user's cache directory, private to them, is not this user's either.
    shared_cache.chmod(0o700)
    (shared_cache / "push-receipts").chmod(0o700)
    chown_all(shared_cache, NOBODY)
    assert native_only(*done).returncode != 0
    again = push(*done)
    assert "(unchanged)" in again.stdout
    [warning] = warnings(again)
    assert f"'{shared_cache}' belongs to uid 65534" in warning, warning


# -- the layer cache -------------------------------------------------------------------------


def records(cache: Path) -> dict[tuple[str, ...], Path]:
    """The cache's records by the store paths of the layer each names."""
    found = {}
    for path in (cache / "layers").glob("*.json"):
        found[tuple(json.loads(path.read_bytes())["layer"]["paths"])] = path
    return found


@pytest.fixture
def cached_app(tmp_path: Path, nix_cli_env: None) -> tuple[Path, str, dict[tuple[str, ...], Path]]:
    """The app's closure built once with the layer cache (one layer per store path), and the
    digest of the same image built without it."""
    app = build("app")
    first = nix_image("--store-path", app, "--layering", "per-path", "--out", tmp_path / "first")
    assert "0 reused, 3 built" in first.stderr and not warnings(first), first.stderr
    reference = nix_image("--store-path", app, "--layering", "per-path", "--out", tmp_path / "ref", "--no-cache")
    assert first.stdout.split()[-1] == reference.stdout.split()[-1]
    cache = cache_dir()
    found = records(cache)
    assert sorted(found) == sorted((p,) for p in (app, build("libgreet"), build("busyboxPkg")))
    return cache, reference.stdout.split()[-1], found


def rebuild(tmp_path: Path, name: str) -> tuple[subprocess.CompletedProcess[str], str]:
    proc = nix_image("--store-path", build("app"), "--layering", "per-path", "--out", tmp_path / name)
    verify_blobs(tmp_path / name)
    return proc, proc.stdout.split()[-1]


def test_the_layer_cache_is_private(cached_app: tuple[Path, str, dict[tuple[str, ...], Path]]) -> None:
    cache, _, found = cached_app
    dirs = [cache, cache / "layers", cache / "tmp", cache / "store", cache / "store" / "blobs"]
    assert {str(d): mode(d) for d in dirs} == {str(d): 0o700 for d in dirs}
    assert {mode(p) for p in found.values()} == {0o600}
    blobs = list((cache / "store" / "blobs" / "sha256").iterdir())
    assert len(blobs) == 3 and all(not mode(b) & 0o022 and b.stat().st_uid == os.geteuid() for b in blobs)


def test_a_poisoned_record_of_another_user_is_not_used(
    tmp_path: Path,
    podman: Podman,
    cached_app: tuple[Path, str, dict[tuple[str, ...], Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The finding: another user's record under the app's name, pointing at another layer (the
    busybox one, in the store), must not put that layer into the image in the app's place."""
    _, reference, found = cached_app
    app, busybox = build("app"), build("busyboxPkg")
    poisoned = json.loads(found[(app,)].read_bytes())
    busybox_record = json.loads(found[(busybox,)].read_bytes())
    poisoned.update({k: busybox_record[k] for k in ("digest", "size", "diffId", "uncompressedSize")})
    found[(app,)].write_bytes(json.dumps(poisoned).encode())
    os.chown(found[(app,)], NOBODY, NOBODY)
    proc, digest = rebuild(tmp_path, "poisoned")
    assert digest == reference and "2 reused, 1 built" in proc.stderr, proc.stderr
    [warning] = warnings(proc)
    assert "ignoring the layer cache" in warning and str(found[(app,)]) in warning and "uid 65534" in warning
    monkeypatch.delenv("DOCKER_CONFIG")  # podman reads it, the push tests' own is not there
    hello = podman.run(tmp_path / "poisoned", "latest", entrypoint=f"{app}/bin/hello")
    assert hello.stdout.endswith("app 1.0\n"), hello.stdout


def test_a_record_naming_another_layer_is_not_used(
    tmp_path: Path, cached_app: tuple[Path, str, dict[tuple[str, ...], Path]]
) -> None:
    """This user's own record, but of the busybox layer, under the app's name: not the app's."""
    _, reference, found = cached_app
    app, busybox = build("app"), build("busyboxPkg")
    shutil.copyfile(found[(busybox,)], found[(app,)])
    proc, digest = rebuild(tmp_path, "renamed")
    assert digest == reference and "2 reused, 1 built" in proc.stderr and not warnings(proc), proc.stderr
    assert json.loads(found[(app,)].read_bytes())["layer"]["paths"] == [app], "the app's own record again"


def test_a_cached_blob_enters_an_image_only_when_it_matches_its_digest(
    tmp_path: Path, cached_app: tuple[Path, str, dict[tuple[str, ...], Path]]
) -> None:
    cache, reference, found = cached_app
    app, busybox = build("app"), build("busyboxPkg")
    blob_of = {p: cache / "store" / "blobs" / "sha256" / json.loads(found[(p,)].read_bytes())["digest"][7:]
               for p in (app, busybox)}  # fmt: skip
    original = blob_of[app].read_bytes()
    blob_of[app].unlink()  # a new file: the first image holds a link to the old one
    blob_of[app].write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # its size, not its bytes
    blob_of[app].chmod(0o600)
    proc, digest = rebuild(tmp_path, "swapped")
    assert digest == reference and "2 reused, 1 built" in proc.stderr, proc.stderr
    [warning] = warnings(proc)
    assert "does not match its digest" in warning, warning
    assert blob_of[app].read_bytes() == original, "the cache holds the layer's blob again"
    # A blob of another user's is not linked into an image, whatever its bytes.
    os.chown(blob_of[busybox], NOBODY, NOBODY)
    proc, digest = rebuild(tmp_path, "foreign")
    assert digest == reference and "2 reused, 1 built" in proc.stderr, proc.stderr
    [warning] = warnings(proc)
    assert str(blob_of[busybox]) in warning and "uid 65534" in warning, warning
    assert blob_of[busybox].stat().st_uid == os.geteuid(), "replaced by this user's"
    proc, digest = rebuild(tmp_path, "again")
    assert digest == reference and "3 reused, 0 built" in proc.stderr and not warnings(proc), proc.stderr


def test_a_layer_cache_of_another_user_is_neither_read_nor_written(
    tmp_path: Path, cached_app: tuple[Path, str, dict[tuple[str, ...], Path]]
) -> None:
    cache, reference, _ = cached_app
    for case in ("other-writable", "other-user"):
        if case == "other-writable":
            (cache / "layers").chmod(0o777)
        else:
            (cache / "layers").chmod(0o700)
            chown_all(cache, NOBODY)
        before = sorted((str(p), p.stat().st_mtime_ns) for p in cache.rglob("*"))
        proc, digest = rebuild(tmp_path, case)
        assert digest == reference and "0 reused, 3 built" in proc.stderr, proc.stderr
        [warning] = warnings(proc)
        offender = cache / "layers" if case == "other-writable" else cache
        assert f"ignoring the layer cache: '{offender}' " in warning, warning
        assert sorted((str(p), p.stat().st_mtime_ns) for p in cache.rglob("*")) == before, "nothing written"
