"""Images made by other tools (umoci, skopeo), seeded into a registry for the pull tests: two
single-platform umoci images, an index of both copied with `skopeo copy --all`, the amd64 one
as a Docker v2 schema 2 image, and zstd and plain-tar images of `layerforge dir-image`; and a
crafted registry on 127.0.0.1 that serves whatever documents a test makes and counts its GETs."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerforge.model import media_types
from tests.helpers import run, run_cli
from tests.registry_support import QuietHandler, free_port, serve

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


class CraftedRegistry:
    """A hostile registry on 127.0.0.1: it answers GET and HEAD of the manifests (by digest
    or tag) and blobs it was given, 404 to anything else, and counts the GETs of each path."""

    def __init__(self, repo: str = "team/app") -> None:
        self.repo = repo
        self.port = free_port()
        self.manifests: dict[str, tuple[str, bytes]] = {}  # digest or tag -> (media type, bytes)
        self.blobs: dict[str, bytes] = {}
        self.gets: Counter[str] = Counter()  # "manifests/REF" or "blobs/DIGEST" -> GETs
        self.lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest

    def manifest(self, doc: dict[str, Any], tag: str | None = None) -> dict[str, Any]:
        """Serve ``doc`` (by its digest, and as ``tag``); its index entry."""
        data = json.dumps(doc).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        for ref in (digest, tag):
            if ref is not None:
                self.manifests[ref] = (doc["mediaType"], data)
        return {"mediaType": doc["mediaType"], "digest": digest, "size": len(data)}

    def image(self, arch: str, note: str = "") -> dict[str, Any]:
        """A linux/``arch`` image of one small tar layer (``note`` makes its manifest differ)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(f"etc/hello-{arch}")
            body = f"hello from {arch}\n".encode()
            info.size, info.mtime = len(body), 0
            tar.addfile(info, io.BytesIO(body))
        layer = buf.getvalue()
        config = json.dumps({
            "architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        }).encode()  # fmt: skip
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media_types.IMAGE_MANIFEST,
            "config": {"mediaType": media_types.IMAGE_CONFIG, "digest": self.blob(config), "size": len(config)},
            "layers": [{"mediaType": media_types.LAYER_TAR, "digest": self.blob(layer), "size": len(layer)}],
        }
        if note:
            doc["annotations"] = {"note": note}
        return self.manifest(doc)

    def index(self, entries: list[dict[str, Any]], tag: str | None = None, note: str = "") -> dict[str, Any]:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_types.IMAGE_INDEX, "manifests": entries}
        if note:
            doc["annotations"] = {"note": note}
        return self.manifest(doc, tag)

    def manifest_gets(self) -> Counter[str]:
        with self.lock:
            return Counter({k: v for k, v in self.gets.items() if k.startswith("manifests/")})

    def start(self) -> CraftedRegistry:
        reg = self
        prefix = f"/v2/{self.repo}/"

        class Handler(QuietHandler):
            def _handle(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                kind, _, ref = path.removeprefix(prefix).partition("/")
                if self.command == "GET":
                    with reg.lock:
                        reg.gets[f"{kind}/{ref}"] += 1
                found: tuple[str, bytes] | None = None
                if path.startswith(prefix) and kind == "manifests":
                    found = reg.manifests.get(ref)
                elif path.startswith(prefix) and kind == "blobs" and ref in reg.blobs:
                    found = ("application/octet-stream", reg.blobs[ref])
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                media_type, body = found
                self.send_response(200)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            do_GET = do_HEAD = _handle

        self._server = serve(Handler, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
