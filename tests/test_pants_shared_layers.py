"""Images sharing layers in one repository (a monorepo's services over a shared runtime): each
distinct layer is built once per cold run, whatever images hold it, and bumping one shared
package rebuilds only the layers holding changed store paths, plus the plans and assemblies
of the images that hold them. Their Nix file is evaluated once per run for all of them. Real
Pants runs; what ran is read from the sandboxes Pants keeps (one per executed process:
identical processes of several images run once)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.nix_support import nix_env
from tests.pants_support import PantsRepo

#: A runtime of four packages of 9 MiB each (layers that big run alone, see
#: layer_jobs.ALONE_BYTES) and three services over different subsets of it.
RUNTIME_NIX = """\
{ busybox ? "/bin/busybox", bump ? "" }:
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    args = [ "sh" "-c" script ];
  };
  package = n: extra: mk "runtime-${n}-1.0" ''
    ${busybox} mkdir -p $out/share
    ${busybox} dd if=/dev/zero of=$out/share/${n} bs=1048576 count=9 2>/dev/null
    ${busybox} echo "${n}${extra}" > $out/share/version
  '';
  a = package "a" ""; b = package "b" ""; c = package "c" ""; d = package "d" bump;
  service = name: deps: mk "service-${name}-1.0" ''
    ${busybox} mkdir -p $out/etc
    ${busybox} echo "${name}: ${builtins.concatStringsSep " " deps}" > $out/etc/deps
  '';
in {
  one = service "one" [ a b c d ];
  two = service "two" [ b c d ];
  three = service "three" [ a b c ];
}
"""

BAD = 'nix_oci_image(name="bad", nix_file="runtime.nix", attr="three", entrypoint=["/bin/nothere"])\n'

BUILD = """\
nix_oci_image(name="one", nix_file="runtime.nix", attr="one", layering="per-path")
nix_oci_image(name="two", nix_file="runtime.nix", attr="two", layering="per-path")
nix_oci_image(name="three", nix_file="runtime.nix", attr="three", layering="per-path")
"""


def closure(repo: PantsRepo, attr: str, bump: str) -> set[str]:
    out = subprocess.run(
        ["nix-build", str(repo.root / "svc" / "runtime.nix"), "-A", attr, "--argstr", "bump", bump, "--no-out-link"],
        capture_output=True, text=True, env=nix_env(), timeout=300, check=True,
    ).stdout.strip()  # fmt: skip
    paths = subprocess.run(["nix-store", "-qR", out], capture_output=True, text=True, env=nix_env(), check=True)
    return set(paths.stdout.split())


def image_layers(repo: PantsRepo, name: str) -> list[str]:
    layout = repo.root / "dist" / "svc" / name
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    return [layer["digest"] for layer in manifest["layers"]]


def test_a_layer_shared_by_images_is_built_once_and_a_bump_rebuilds_only_what_changed(tmp_path: Path) -> None:
    repo = PantsRepo(tmp_path / "repo")
    repo.write("svc/runtime.nix", RUNTIME_NIX)
    repo.write("svc/BUILD", BUILD)
    distinct = set().union(*(closure(repo, a, "") for a in ("one", "two", "three")))
    assert len(distinct) == 7, sorted(distinct)  # four packages, three services

    cold = repo.run("package", "svc::")
    assert cold.returncode == 0, cold.stderr[-3000:]
    assert len(PantsRepo.evaluated(cold)) == 1, "one evaluation of runtime.nix for the three images"
    plans = [e for e in PantsRepo.executed(cold) if e.startswith("Plan")]
    assert plans == ["Plan the layers of 3 images that read svc/runtime.nix"], "one plan process for the three"
    # each assembly writes its image's build record, from what the layer processes listed
    assert PantsRepo.executed(cold, ("Write the build record",)) == []
    assert all((repo.root / "dist" / "svc" / f"{n}.layerforge.json").is_file() for n in ("one", "two", "three"))
    ran = [e for e in PantsRepo.executed(cold) if e.startswith("Build layer")]
    assert sum(PantsRepo.layers_built(e) for e in ran) == len(distinct), f"each of the 7 distinct layers once: {ran}"
    # Each layer process that ran says so when it finishes: its layers' size and its time.
    # (Once per process, whichever images asked for it.)
    finished = re.findall(r"\] (Build layers? \S+ of \S+): [\d.,]+ (KiB|MiB) in [\d.]+ s$", cold.stderr, re.MULTILINE)
    assert sorted(d for d, _ in finished) == sorted(ran), (finished, ran)
    layers = {name: image_layers(repo, name) for name in ("one", "two", "three")}
    assert len(set().union(*map(set, layers.values()))) == len(distinct), layers
    assert sum(map(len, layers.values())) == 5 + 4 + 4, "the images hold 13 layers, 7 of them distinct"

    # Bump d: its layer changes, and so do the services whose closure holds it (one, two).
    repo.write("svc/BUILD", BUILD.replace('attr="one"', 'attr="one", argstrs={"bump": "2"}').replace(
        'attr="two"', 'attr="two", argstrs={"bump": "2"}'))  # fmt: skip
    bumped = repo.run("package", "svc::")
    assert bumped.returncode == 0, bumped.stderr[-3000:]
    # one and two read the file with other argstrs than three: one evaluation each way
    assert len(PantsRepo.evaluated(bumped)) == 2, PantsRepo.evaluated(bumped)
    changed = (closure(repo, "one", "2") | closure(repo, "two", "2")) - distinct
    assert len(changed) == 3, sorted(changed)  # d, service-one, service-two
    ran = PantsRepo.executed(bumped)
    built = [e for e in ran if e.startswith("Build layer")]
    assert sum(PantsRepo.layers_built(e) for e in built) == len(changed), f"only the 3 changed layers: {ran}"
    # one and two share their evaluation and so their plan; three, alone now, plans alone (the
    # same plan as before: its assembly is not run again)
    assert sorted(e for e in ran if e.startswith("Plan")) == [
        "Plan the layers of 2 images that read svc/runtime.nix",
        "Plan the layers of svc:three",
    ]
    assert sorted(e for e in ran if e.startswith("Assemble")) == [
        "Assemble the image of svc:one", "Assemble the image of svc:two"]  # fmt: skip
    after = {name: image_layers(repo, name) for name in ("one", "two", "three")}
    assert after["three"] == layers["three"]
    assert len(set(after["one"]) & set(layers["one"])) == 3, "a, b and c: the same layers"
    assert len(set(after["two"]) & set(layers["two"])) == 2, "b and c: the same layers"

    # An image whose plan fails fails the shared plan: each image then plans alone, and the
    # error names the image and its field.
    repo.write("svc/BUILD", BUILD + BAD)
    failed = repo.run("package", "svc::")
    assert failed.returncode != 0
    assert "svc:bad" in failed.stderr and "`entrypoint`" in failed.stderr, failed.stderr[-3000:]
    plans = [e for e in PantsRepo.executed(failed) if e.startswith("Plan")]
    assert "Plan the layers of 4 images that read svc/runtime.nix" in plans and "Plan the layers of svc:bad" in plans


def test_the_only_image_of_a_repository_is_built_in_the_fewest_processes(tmp_path: Path) -> None:
    """With no other nix_oci_image to share layers with, an image's layers are batched into
    the fewest processes, whatever their size (`nix-plan --layer-batches=per-image`); once a
    second image is there, its layers are batched to be shared (each 9 MiB package alone).
    Either way the image is the same, byte for byte."""
    repo = PantsRepo(tmp_path / "repo")
    repo.write("svc/runtime.nix", RUNTIME_NIX)
    repo.write("svc/BUILD", BUILD.splitlines()[0] + "\n")
    alone = repo.run("package", "svc::")
    assert alone.returncode == 0, alone.stderr[-3000:]
    ran = [e for e in PantsRepo.executed(alone) if e.startswith("Build layer")]
    assert ran == ["Build layers 1-5/5 of svc:one"], "four 9 MiB packages and the service: one process"
    one = (repo.root / "dist" / "svc" / "one.layerforge.json").read_bytes()
    layers = image_layers(repo, "one")

    repo.write("svc/BUILD", "\n".join(BUILD.splitlines()[:2]) + "\n")
    shared = repo.run("package", "svc::")
    assert shared.returncode == 0, shared.stderr[-3000:]
    ran = [e for e in PantsRepo.executed(shared) if e.startswith("Build layer")]
    assert sum(PantsRepo.layers_built(e) for e in ran) == 6, f"a, b, c, d and both services, once: {ran}"
    # Each 9 MiB package in a process of its own, and each service's small layer too: six
    # processes of one layer (a process two images ask for is named after either of them).
    assert len(ran) == 6 and all(PantsRepo.layers_built(e) == 1 for e in ran), ran
    assert image_layers(repo, "one") == layers
    assert (repo.root / "dist" / "svc" / "one.layerforge.json").read_bytes() == one, "the same image and record"
