"""Records and archives through real `pants` runs: `package` writes the build record beside
the layout (and, with `output_format="oci-archive"`, the layout as one tar that ctr and
skopeo read); `publish` names the digest and the registries it used in `--publish-output`,
adds every push to the publish record, and `[layerforge].publish_dry_run` only lists what a
push would send."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.containerd_support import containerd, have_containerd
from tests.helpers import index_entry, run, run_cli
from tests.nix_support import IMAGES_NIX
from tests.pants_support import PantsRepo
from tests.registry_support import Registry

SCHEMAS = Path(__file__).resolve().parent.parent / "python" / "layerforge" / "record" / "schema"

BUILD = """
nix_oci_image(
    name="app",
    nix_file="images.nix",
    attr="app",
    argstrs={"appVersion": "1.0"},
    copy_to_root_attrs=["busyboxPkg", "app"],
    entrypoint=["/bin/hello"],
    repository="team/app",
    image_tags=["1.0", "latest"],
    output_format="oci-archive",
)
"""


def validate(record: object, schema: str) -> None:
    doc = json.loads((SCHEMAS / schema).read_text())
    errors = sorted(jsonschema.Draft202012Validator(doc).iter_errors(record), key=str)
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "registry").start()
    yield reg
    reg.stop()


def test_package_records_and_archives_and_publish_names_what_it_pushed(tmp_path: Path, registry: Registry) -> None:
    repo = PantsRepo(
        tmp_path / "repo",
        f'\n[layerforge.registries.local]\naddress = "{registry.host}"\ndefault = true\n',
    )
    repo.write("images/images.nix", IMAGES_NIX.read_text())
    repo.write("images/BUILD", BUILD)
    packaged = repo.run("package", "images:app")
    assert packaged.returncode == 0, packaged.stderr[-4000:]
    dist = repo.root / "dist" / "images"
    layout, archive, record_file = dist / "app", dist / "app.tar", dist / "app.layerforge.json"
    digest = index_entry(layout, "1.0")["digest"]
    assert index_entry(layout, "1.0")["annotations"]["io.containerd.image.name"] == "team/app:1.0"

    record = json.loads(record_file.read_text())
    validate(record, "build-record.v1.json")
    assert record["digest"] == digest and record["repository"] == "team/app" and record["tags"] == ["1.0", "latest"]
    assert record["output"] == "images/app" and record["archive"] == "images/app.tar" and record["images"][0]["layers"]
    assert any(p.endswith("-app-1.0") for layer in record["images"][0]["layers"] for p in layer["storePaths"])

    # The archive is the layout's, bit for bit as the command line writes it.
    again = tmp_path / "again.tar"
    run_cli("export-oci", layout, "--out", again)
    assert hashlib.sha256(archive.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()
    copied = tmp_path / "copied"
    run("skopeo", "copy", "--preserve-digests", f"oci-archive:{archive}:1.0", f"oci:{copied}:1.0")
    assert index_entry(copied, "1.0")["digest"] == digest
    if have_containerd():
        with containerd(tmp_path / "ctr") as ctr:
            ctr.import_archive(archive)
            assert ctr.image_names() == {"team/app:1.0": digest}

    # A dry run asks the registry and sends nothing.
    dry = repo.run("--layerforge-publish-dry-run", "publish", "images:app")
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert "dry run: would push" in dry.stdout + dry.stderr and "nothing was sent" in dry.stdout + dry.stderr
    assert not registry.manifest_exists("team/app", "1.0")
    assert not (dist / "app.publish.layerforge.json").exists()

    output = tmp_path / "publish.json"
    published = repo.run("publish", f"--publish-output={output}", "images:app")
    assert published.returncode == 0, published.stderr[-4000:]
    text = published.stdout + published.stderr
    assert f"{registry.host}/team/app:1.0 published to {registry.host} ({digest})" in text, text[-3000:]
    (data,) = [d for d in json.loads(output.read_text()) if d.get("published")]
    assert data["registries"] == [registry.host] and data["digest"] == digest
    assert data["references"] == [f"{registry.host}/team/app:1.0", f"{registry.host}/team/app:latest"]

    pushed = json.loads((dist / "app.publish.layerforge.json").read_text())
    validate(pushed, "publish-record.v1.json")
    (entry,) = pushed["pushes"]
    served = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/team/app:latest")
    assert entry["digest"] == digest == "sha256:" + hashlib.sha256(served.stdout.encode()).hexdigest()
    assert entry["bytes"]["pushed"] > 0 and entry["tags"] == {"1.0": "pushed", "latest": "pushed"}
