"""``layerforge push``: ``-v`` tells what happened to every blob (pushed, mounted, skipped),
on a terminal or not, also where a receipt would let the native command answer; a re-push
after pushing the image elsewhere stays native."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers import image_parts, read_json_blob, run_cli
from tests.push_support import isolate, multi_layer_image, push
from tests.registry_support import Registry

LINE = re.compile(r"^layerforge: blob (pushed|mounted|skipped) (sha256:[0-9a-f]{64}) \((\d+) bytes\)$", re.M)


def blob_lines(stderr: str) -> dict[str, tuple[str, int]]:
    return {m.group(2): (m.group(1), int(m.group(3))) for m in LINE.finditer(stderr)}


def test_verbose_push_prints_one_line_per_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("LAYERFORGE_PUSH_FAST_PATH", "0")  # the Python push, every time
    src = multi_layer_image(tmp_path, layers=3, size=50_000)
    _, manifest, _ = image_parts(src, "v1")
    blobs = {d["digest"]: d["size"] for d in [manifest["config"], *manifest["layers"]]}
    assert read_json_blob(src, manifest["config"]["digest"])  # the config is a real blob

    first = push(f"{src}:v1", f"{registry.host}/team/app:1", "-v")
    assert blob_lines(first.stderr) == {d: ("pushed", s) for d, s in blobs.items()}, first.stderr

    # Another repository of the same registry: mounted from the first.
    other = push(f"{src}:v1", f"{registry.host}/team/other:1", "-v")
    assert blob_lines(other.stderr) == {d: ("mounted", s) for d, s in blobs.items()}, other.stderr

    # A new tag of an image the repository has: every blob skipped (checked), then the same
    # with every tag already there (nothing asked, still listed).
    again = push(f"{src}:v1", f"{registry.host}/team/app:2", "-v")
    assert blob_lines(again.stderr) == {d: ("skipped", s) for d, s in blobs.items()}, again.stderr
    same = push(f"{src}:v1", f"{registry.host}/team/app:2", "-v")
    assert blob_lines(same.stderr) == {d: ("skipped", s) for d, s in blobs.items()}, same.stderr

    # Without -v, no per-blob lines off a terminal.
    quiet = push(f"{src}:v1", f"{registry.host}/team/app:3")
    assert blob_lines(quiet.stderr) == {}, quiet.stderr


def test_repush_after_pushing_elsewhere_is_still_answered_natively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    """Publishing one image to two repositories, then again: the second round has nothing to
    send to either, and the native command answers both (a blob found in a repository does
    not reorder the known-blobs memory, so the Python push would leave it as it is too)."""
    isolate(monkeypatch, tmp_path)
    src = multi_layer_image(tmp_path, layers=2, size=20_000)
    targets = [f"{registry.host}/team/a:1", f"{registry.host}/team/b:1"]
    for target in targets:
        push(f"{src}:v1", target)
    cache = tmp_path / "cache" / "registry-blobs.json"
    known = cache.read_bytes()
    no_python = {**os.environ, "LAYERFORGE_PYTHON": "/bin/false"}
    for target in targets:
        native = run_cli("push", f"{src}:v1", target, env=no_python)
        assert "(unchanged)" in native.stdout, native.stderr
        python = run_cli("push", f"{src}:v1", target, env={**os.environ, "LAYERFORGE_PUSH_FAST_PATH": "0"})
        assert (native.stdout, native.stderr) == (python.stdout, python.stderr)
        assert cache.read_bytes() == known, "neither push rewrites the memory"


def test_verbose_repush_lists_every_blob_even_with_a_receipt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry
) -> None:
    """The native command answers a plain re-push from its receipt, but a ``-v`` push is
    Python's (no receipt is written for it), so its per-blob lines are always there."""
    isolate(monkeypatch, tmp_path)
    src = multi_layer_image(tmp_path, layers=2, size=20_000)
    _, manifest, _ = image_parts(src, "v1")
    blobs = {d["digest"]: d["size"] for d in [manifest["config"], *manifest["layers"]]}
    target = f"{registry.host}/team/app:1"
    push(f"{src}:v1", target)
    no_python = {**os.environ, "LAYERFORGE_PYTHON": "/bin/false"}
    assert "(unchanged)" in run_cli("push", f"{src}:v1", target, env=no_python).stdout
    for _ in range(2):
        verbose = push(f"{src}:v1", target, "-v")
        assert blob_lines(verbose.stderr) == {d: ("skipped", s) for d, s in blobs.items()}, verbose.stderr
    assert run_cli("push", f"{src}:v1", target, "-v", check=False, env=no_python).returncode != 0
    assert len(list((tmp_path / "cache" / "push-receipts").iterdir())) == 1
