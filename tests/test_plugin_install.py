"""layerforge in another repository, installed as every published Pants plugin is: the two
wheels scripts/dist builds from a clean clone in a folder standing in for the index, and a
brand-new repository holding only README's `pants.toml`, a BUILD file and a Nix file. Pants
resolves `layerforge-pants` from `[GLOBAL].plugins`, installs the tool from the plugin's own
default lockfile, builds the image with Debian's Nix as root (no `nixbld` group, no
NIX_CONFIG), publishes it to a loopback registry, and podman pulls and runs it. A resolve of
the repository's own that locks another layerforge is one line naming both versions.

The only other input is this machine's own Pants settings (``machine.toml``, read after
`pants.toml` like a `.pants.rc`): the `pex` tool ./pants built, since these machines cannot
download it from GitHub, and the interpreter to bootstrap with."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

from tests.dist_support import dist_output
from tests.pants_support import BOOT, BOOTSTRAPPED_VERSION, PANTS_EXE, bootstrap
from tests.registry_support import Registry
from tests.runtime_support import Podman

pytestmark = pytest.mark.skipif(bool(PANTS_EXE), reason="the plugin's wheel is tested with the bootstrapped Pants")

#: README's "Use it in your repository", with this test's folders and registry.
PANTS_TOML = """\
[GLOBAL]
pants_version = "{pants_version}"
plugins = ["layerforge-pants=={version}"]
backend_packages = ["layerforge_pants"]

[python]
interpreter_constraints = ["CPython>=3.9,<3.14"]

[python-repos]
find_links = ["file://{wheels}"]
path_mappings = ["LAYERFORGE_WHEELS|{wheels}"]

[layerforge.registries.local]
address = "{registry}"
default = true
insecure = true
"""

BUILD = """\
nix_oci_image(
    name="hello",
    nix_file="hello.nix",
    attr="hello",
    copy_to_root_attrs=["tools", "hello"],
    entrypoint=["/bin/hello"],
    repository="acme/hello",
    image_tags=["1.0"],
)
"""

#: Plain derivations whose builder is the host's static busybox copied into the store, so
#: they build in Nix's sandbox (Nix's default) without nixpkgs.
NIX = """\
let
  bin = builtins.path { path = /usr/bin; name = "busybox-static"; filter = p: t: baseNameOf p == "busybox"; };
  busybox = "${bin}/busybox";
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    args = [ "sh" "-c" script ];
  };
in rec {
  tools = mk "tools-1.0" ''
    ${busybox} mkdir -p $out/bin
    ${busybox} cp ${busybox} $out/bin/busybox
    ${busybox} ln -s busybox $out/bin/sh
  '';
  hello = mk "hello-1.0" ''
    ${busybox} mkdir -p $out/bin
    ${busybox} echo "#!${tools}/bin/sh" > $out/bin/hello
    ${busybox} echo "echo hello from a new repository" >> $out/bin/hello
    ${busybox} chmod 555 $out/bin/hello
  '';
}
"""


def machine_toml() -> str:
    """This machine's own settings, from ./pants' bootstrap: its `pex` tool and interpreter."""
    boot = tomllib.loads((BOOT / "pants.bootstrap.toml").read_text())
    pex, search = boot["pex-cli"], boot["python-bootstrap"]["search_path"]
    return (
        f'[pex-cli]\nversion = "{pex["version"]}"\nknown_versions = {json.dumps(pex["known_versions"])}\n'
        f'url_template = "{pex["url_template"]}"\n\n[python-bootstrap]\nsearch_path = {json.dumps(search)}\n'
    )


class NewRepository:
    def __init__(self, root: Path, wheels: Path, registry: Registry) -> None:
        self.root, self.pants = root, bootstrap()
        version = next(wheels.glob("layerforge_pants-*.whl")).name.split("-")[1]
        root.mkdir()
        (root / "pants.toml").write_text(
            PANTS_TOML.format(
                pants_version=BOOTSTRAPPED_VERSION, version=version, wheels=wheels, registry=registry.host
            )
        )
        (root / "BUILD").write_text(BUILD)
        (root / "hello.nix").write_text(NIX)
        self.machine = root.parent / "machine.toml"
        self.machine.write_text(machine_toml())
        self.cache = root.parent / "pants-cache"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PANTS_", "NIX_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV", "LAYERFORGE_PYTHON")
        }
        env.update(NO_SCIE_WARNING="1", PANTS_CONFIG_FILES=f"+['{self.machine}']")
        argv = [
            str(self.pants), "--no-pantsd", f"--local-store-dir={self.cache / 'store'}",
            f"--named-caches-dir={self.cache / 'named'}", f"--pants-workdir={self.root / '.pants.d'}", *args,
        ]  # fmt: skip
        return subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True, timeout=1800,
                              check=False, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """The two wheels of HEAD's release, alone in a folder (what an index would serve)."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    for wheel in dist_output().glob("*.whl"):
        shutil.copy(wheel, folder)
    return folder


def test_a_new_repository_packages_publishes_and_runs_with_the_plugins_wheels(
    tmp_path: Path, wheels: Path, registry: Registry
) -> None:
    repo = NewRepository(tmp_path / "repo", wheels, registry)
    assert sorted(p.name for p in repo.root.iterdir()) == ["BUILD", "hello.nix", "pants.toml"]

    packaged = repo.run("package", "::")
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    [layout] = (repo.root / "dist").glob("**/index.json")
    index = json.loads(layout.read_text())
    [manifest] = index["manifests"]

    published = repo.run("publish", "::")
    assert published.returncode == 0, published.stdout + published.stderr
    served = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/acme/hello:1.0"],
        capture_output=True, check=True,
    )  # fmt: skip
    assert f"sha256:{hashlib.sha256(served.stdout).hexdigest()}" == manifest["digest"]

    with Podman() as podman:
        image = podman.pull_loopback(f"{registry.host}/acme/hello:1.0")
        assert podman.run_image(image).stdout == "hello from a new repository\n"


def test_a_resolve_locking_another_tool_version_is_one_line(tmp_path: Path, wheels: Path, registry: Registry) -> None:
    """A repository that installs the tool from a resolve of its own (install_from_resolve)
    whose lockfile locks a layerforge of another release: one line, both versions, the fix."""
    repo = NewRepository(tmp_path / "repo", wheels, registry)
    version = next(wheels.glob("layerforge_pants-*.whl")).name.split("-")[1]
    other = "9.9.9"
    toml = (repo.root / "pants.toml").read_text()
    toml = toml.replace("[python]\n", '[python]\nenable_resolves = true\nresolves = { tools = "tools.lock" }\n')
    (repo.root / "pants.toml").write_text(toml + '\n[layerforge]\ninstall_from_resolve = "tools"\n')
    lock = {"locked_resolves": [{"locked_requirements": [{"project_name": "layerforge", "version": other}]}]}
    (repo.root / "tools.lock").write_text("// a resolve of this repository's\n" + json.dumps(lock))
    out = repo.run("package", "::")
    assert out.returncode != 0
    [line] = [line for line in out.stderr.splitlines() if "ToolReleaseMismatch" in line or "runs layerforge" in line]
    assert (
        f"layerforge-pants {version} runs layerforge {version}, but the resolve `tools` "
        f"([layerforge].install_from_resolve, tools.lock) locks layerforge {other}: "
        f"require layerforge=={version} there and run `pants generate-lockfiles --resolve=tools`, "
        f"or install layerforge-pants=={other} in [GLOBAL].plugins."
    ) in line, out.stderr
