"""Images made by other tools (umoci, skopeo), seeded into a registry for the pull tests: two
single-platform umoci images, an index of both copied with `skopeo copy --all`, the amd64 one
as a Docker v2 schema 2 image, and zstd and plain-tar images of `layerforge dir-image`."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from layerforge.model import media_types
from tests.helpers import run, run_cli

#: The platforms of the seeded index, and what their images hold.
PLATFORMS = {"amd64": ("linux", "amd64", None), "arm64": ("linux", "arm64", "v8")}


@dataclass(frozen=True)
class Seeded:
    host: str
    index_digest: str  # sha256 of the index bytes the registry serves for multi:1
    children: dict[str, str]  # arch -> manifest digest
    docker_digest: str  # the Docker v2 schema 2 image
    compressed: dict[str, str]  # "zstd"/"none" -> manifest digest


def raw_manifest(host: str, repo: str, ref: str) -> bytes:
    """The manifest bytes the registry serves (asked directly, no auth)."""
    accept = ", ".join(sorted(media_types.MANIFEST_TYPES | media_types.INDEX_TYPES))
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return bytes(resp.read())


def registry_digest(host: str, repo: str, ref: str) -> str:
    return "sha256:" + hashlib.sha256(raw_manifest(host, repo, ref)).hexdigest()


def skopeo_copy(src: str, dest: str, *extra: str) -> None:
    run("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", *extra, src, dest)


def umoci_images(root: Path) -> Path:
    """A layout with one umoci image per platform (tags ``amd64``, ``arm64``), each with a
    file and an environment variable of its own, and an index of both tagged ``multi``."""
    layout = root / "umoci"
    run("umoci", "init", "--layout", layout)
    for arch, (os_, cpu, _variant) in PLATFORMS.items():
        # unpack + repack (umoci 0.4's `insert` ends its tar layers early, without padding)
        bundle = root / f"bundle-{arch}"
        run("umoci", "new", "--image", f"{layout}:{arch}")
        run("umoci", "unpack", "--image", f"{layout}:{arch}", bundle)
        (bundle / "rootfs" / "etc").mkdir()
        (bundle / "rootfs" / "etc" / f"hello-{arch}").write_text(f"hello from {arch}\n")
        run("umoci", "repack", "--image", f"{layout}:{arch}", bundle)
        shutil.rmtree(bundle)
        run(
            "umoci", "config", "--image", f"{layout}:{arch}", "--architecture", cpu, "--os", os_,
            "--config.env", f"FROM_BASE={arch}", "--config.env", "PATH=/bin", "--config.workingdir", "/srv",
        )  # fmt: skip
    index = json.loads((layout / "index.json").read_text())
    entries = []
    for m in index["manifests"]:
        arch = m["annotations"]["org.opencontainers.image.ref.name"]
        os_, cpu, variant = PLATFORMS[arch]
        platform = {"architecture": cpu, "os": os_, **({"variant": variant} if variant else {})}
        entries.append({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"], "platform": platform})
    data = json.dumps({"schemaVersion": 2, "mediaType": media_types.IMAGE_INDEX, "manifests": entries}).encode()
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    index["manifests"].append({
        "mediaType": media_types.IMAGE_INDEX, "digest": f"sha256:{digest}", "size": len(data),
        "annotations": {"org.opencontainers.image.ref.name": "multi"},
    })  # fmt: skip
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def seed(root: Path, host: str) -> Seeded:
    layout = umoci_images(root)
    skopeo_copy(f"oci:{layout}:multi", f"docker://{host}/base/multi:1", "--all", "--preserve-digests")
    skopeo_copy(f"oci:{layout}:amd64", f"docker://{host}/base/docker:1", "--format", "v2s2")
    compressed = {}
    tree = root / "tree"
    (tree / "data").mkdir(parents=True)
    (tree / "data" / "payload.txt").write_text("layerforge pull payload\n" * 1000)
    for compression in ("zstd", "none"):
        out = root / f"dir-{compression}"
        run_cli("dir-image", tree, "--out", out, "--tag", "v1", "--compression", compression)
        skopeo_copy(f"oci:{out}:v1", f"docker://{host}/base/{compression}:1", "--preserve-digests")
        compressed[compression] = registry_digest(host, f"base/{compression}", "1")
    shutil.rmtree(root / "tree")
    multi = raw_manifest(host, "base/multi", "1")
    children = {}
    for entry in json.loads(multi)["manifests"]:
        children[entry["platform"]["architecture"]] = entry["digest"]
    return Seeded(
        host=host,
        index_digest="sha256:" + hashlib.sha256(multi).hexdigest(),
        children=children,
        docker_digest=registry_digest(host, "base/docker", "1"),
        compressed=compressed,
    )


def storage_blob(registry_root: Path, digest: str) -> Path:
    """Where docker-registry's filesystem driver keeps a blob's bytes."""
    hexd = digest.split(":", 1)[1]
    return registry_root / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"


def layers_of(host: str, repo: str, ref: str) -> list[dict[str, object]]:
    return list(json.loads(raw_manifest(host, repo, ref))["layers"])


def kill_after(proc: subprocess.Popen[str], ready: Path, count: int, timeout: float) -> None:
    """SIGTERM ``proc`` once ``ready`` (a blobs dir) holds ``count`` files; bounded wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready.is_dir() and len(list(ready.iterdir())) >= count:
            proc.terminate()
            return
        if proc.poll() is not None:
            raise AssertionError(f"the pull ended ({proc.returncode}) before it held {count} blobs")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the pull did not hold {count} blobs within {timeout:g} s")
