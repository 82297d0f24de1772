"""What the push tests share: an isolated credentials and cache environment, a registry and
a counting proxy in front of it, test images, the CLI push, Docker config files."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from layerforge._native import LayerSpec
from layerforge.layers.build import build_layers
from layerforge.layout.artifact import attach_artifact
from layerforge.layout.image_writer import write_image
from layerforge.layout.oci_layout import OciLayout, open_for_write
from layerforge.model import media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.image_config import ImageConfig
from layerforge.model.index import Index
from layerforge.model.platform import Platform
from tests.helpers import layerforge_bin, run_cli

#: How long a push that is meant to fail quickly may run before the test gives up on it.
BOUND = 60.0
#: Resident memory a push may reach before the test stops it (an unbounded read gets there).
MAX_RSS = 512 << 20

SECRET = "s3cr3t-Pa55w0rd-never-print"


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or known-blobs memory from the machine: each test has its own."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("LAYERFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("LAYERFORGE_REGISTRY_TIMEOUT", raising=False)


def push(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli("push", *map(str, args), check=check, env=os.environ.copy())


def multi_layer_image(root: Path, layers: int = 5, size: int = 300_000, ref: str = "v1") -> Path:
    layout_dir = root / "layout"
    specs = []
    for i in range(layers):
        spec = LayerSpec()
        spec.add_file(f"/data/layer-{i}.bin", os.urandom(size))
        specs.append(spec)
    with open_for_write(layout_dir) as layout:
        built = build_layers(layout, specs)
        config = ImageConfig(
            platform=Platform("amd64", "linux"),
            created="1970-01-01T00:00:01Z",
            diff_ids=tuple(b.diff_id for b in built),
        )
        write_image(layout, config, [b.descriptor for b in built], annotations={}, ref=ref)
    return layout_dir


def platform_index(
    layout_dir: Path, archs: dict[str, str], ref: str = "multi", size: int = 1000
) -> tuple[Descriptor, list[Descriptor]]:
    """An index tagged ``ref`` of one single-layer image per architecture (``archs`` maps each
    to its layer's media type); the index's and the images' descriptors."""
    with open_for_write(layout_dir) as layout:
        children = []
        for arch, mt in archs.items():
            blob = layout.put_blob(f"payload for {arch}".encode() * size, mt)
            config = ImageConfig(Platform(arch, "linux"), "1970-01-01T00:00:01Z", diff_ids=(blob.digest,))
            cfg = layout.put_json(config.to_json(), media_types.IMAGE_CONFIG)
            m = {"schemaVersion": 2, "mediaType": media_types.IMAGE_MANIFEST, "config": cfg.to_json(),
                 "layers": [blob.to_json()]}  # fmt: skip
            d = layout.put_json(m, media_types.IMAGE_MANIFEST)
            children.append(Descriptor(d.media_type, d.digest, d.size, platform=Platform(arch, "linux")))
        idx = layout.put_json(Index(manifests=tuple(children)).to_json(), media_types.IMAGE_INDEX)
        layout.tag(idx, ref)
    return idx, children


def write_docker_config(path: Path, registry: str, user: str, password: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (path / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))


def assert_secret_hidden(proc: subprocess.CompletedProcess[str]) -> None:
    assert SECRET not in proc.stdout + proc.stderr
    assert base64.b64encode(f"alice:{SECRET}".encode()).decode() not in proc.stdout + proc.stderr
    assert "Authorization" not in proc.stderr


def attach_sbom(src: Path, ref: str = "v1") -> Descriptor:
    layout = OciLayout.open(src)
    with layout.locked():
        return attach_artifact(
            layout, layout.resolve(ref), artifact_type="application/spdx+json",
            payload=canonical_json({"spdxVersion": "SPDX-2.3", "name": ref}),
            payload_media_type="application/spdx+json", title="sbom.spdx.json", epoch=1,
        )  # fmt: skip


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def bounded_push(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``layerforge push``; the test fails (and the push is killed) if it runs longer
    than :data:`BOUND` or grows past :data:`MAX_RSS`."""
    argv = [layerforge_bin(), "push", *map(str, args)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + BOUND
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"push {args} still running after {BOUND:g} s")
            if _rss(proc.pid) > MAX_RSS:
                raise AssertionError(f"push {args} grew past {MAX_RSS >> 20} MiB of memory")
            time.sleep(0.05)
        out, err = proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=BOUND)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def one_error_line(proc: subprocess.CompletedProcess[str], status: int = 1) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("layerforge push: error: "), proc.stderr
    return lines[0]
