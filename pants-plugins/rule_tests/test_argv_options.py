"""Field values reach the tool's argv only as the values of options: every one is passed as
``--flag=value`` (one argument, which argparse never reads as an option of its own, whatever
the value starts with), and positionals come after ``--``. Fields whose values are store paths
refuse anything else, in one line naming the target, the field and the value. Each argv
builder is given values that start with ``--`` wherever its fields let them through."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from build_files import backend_rule_runner, parsed_target, refused
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST
from pants.testutil.rule_runner import RuleRunner

from layerforge_pants.goals.dependency import ImageDependency
from layerforge_pants.goals.package import (
    BuiltImageArtifact,
    ImageFieldSet,
    ImageNames,
    archive_path,
    export_archive_process,
    named_argv,
    record_process,
)
from layerforge_pants.goals.publish import publish_record_path, push_argv, push_data
from layerforge_pants.goals.pull import RemoteImageRequest, pull_process
from layerforge_pants.goals.run import run_argv
from layerforge_pants.index.package import OciImageIndexFieldSet, index_argv
from layerforge_pants.nix.evaluation import NixEvaluation
from layerforge_pants.nix.package import NixOciImageFieldSet, assemble_argv
from layerforge_pants.nydus.package import NydusImageFieldSet, nydus_argv
from layerforge_pants.unikraft.package import UnikraftImageFieldSet, image_argv, unikraft_argv

STORE_PATH = "/nix/store/" + "a" * 32 + "-app"
OTHER = "/nix/store/" + "b" * 32 + "-lib"
HOSTILE = "--out"
#: Options that take no value (booleans): the only arguments not of the form --flag=value.
BARE = {"--sbom", "--allow-foreign-executables", "--nix-snapshotter", "--merge-platform", "--shallow",
        "--all-platforms", "--insecure", "--without-layer-blobs", "--dry-run"}  # fmt: skip
_OPTION = re.compile(r"--[a-z][a-z-]*=")


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    return backend_rule_runner()


def options_only(argv: list[str] | tuple[str, ...], positionals: int = 0) -> list[str]:
    """``argv``'s arguments after the command, each ``--flag=value`` or a boolean flag, then
    ``--`` and ``positionals`` arguments: the positionals (checked, returned)."""
    args = list(argv[1:])
    tail: list[str] = []
    if positionals:
        assert args[-positionals - 1] == "--", argv
        args, tail = args[: -positionals - 1], args[-positionals:]
    wrong = [a for a in args if a not in BARE and not _OPTION.match(a)]
    assert not wrong, f"not --flag=value: {wrong} in {argv}"
    return tail


def values_of(argv: list[str] | tuple[str, ...], flag: str) -> list[str]:
    return [a.split("=", 1)[1] for a in argv if a.startswith(f"{flag}=")]


@pytest.mark.parametrize(
    "groups",
    [
        [["--out", "/abs/plan.json"]],
        [[STORE_PATH, "--out", "/abs/plan.json"]],
        [[STORE_PATH], ["--max-layers=1"]],
        [[f"{STORE_PATH},{OTHER}"]],
        [[""]],
    ],
)
def test_layer_groups_hold_store_paths_only(rule_runner: RuleRunner, groups: list[list[str]]) -> None:
    line = refused(rule_runner, f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"], layer_groups={groups!r})')
    bad = next(p for g in groups for p in g if not re.fullmatch(r"/nix/store/[a-z0-9]{32}-[a-z]+", p))
    assert "src/BUILD:1: The `layer_groups` field of src:x has " in line, line
    assert repr(bad) in line and "not a Nix store path" in line, line


def test_a_flat_list_is_not_layer_groups(rule_runner: RuleRunner) -> None:
    line = refused(rule_runner, f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"], layer_groups=["--out", "/a"])')
    assert "layer_groups" in line and "src:x" in line and "a list of lists of store paths" in line, line


def test_copy_to_root_holds_store_paths_only(rule_runner: RuleRunner) -> None:
    line = refused(rule_runner, f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"], copy_to_root=["--out"])')
    assert "src/BUILD:1: The `copy_to_root` field of src:x has '--out', which is not a Nix store path" in line, line


def test_plan_argv_passes_every_field_value_as_the_value_of_its_option(rule_runner: RuleRunner) -> None:
    target = parsed_target(
        rule_runner,
        f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"], layer_groups=[["{STORE_PATH}", "{OTHER}"], '
        f'["{OTHER}"]], copy_to_root=["{OTHER}"], perms=["--out=/abs=0755"], entrypoint=["{HOSTILE}"], '
        f'cmd=["{HOSTILE}"], env={{"{HOSTILE}": "/abs"}}, labels={{"{HOSTILE}": "/abs"}}, workdir="/w", '
        f'user="{HOSTILE}", stop_signal="{HOSTILE}", image_source="{HOSTILE}", image_revision="{HOSTILE}", '
        f'exposed_ports=["{HOSTILE}"], volumes=["{HOSTILE}"], compression_level=5, sbom=True)',
    )
    argv = NixOciImageFieldSet.create(target).plan_argv("1.0", (f"{STORE_PATH}.drv!out",), ())
    assert argv[0] == "nix-plan"
    options_only(argv)
    assert values_of(argv, "--layer-group") == [f"{STORE_PATH},{OTHER}", OTHER]
    assert values_of(argv, "--out") == ["plan.json"]
    assert values_of(argv, "--env") == ["--out=/abs"] and values_of(argv, "--perms") == ["--out=/abs=0755"]
    assert values_of(argv, "--user") == [HOSTILE] and values_of(argv, "--volume") == [HOSTILE]
    assert values_of(argv, "--store-path") == [STORE_PATH] and values_of(argv, "--tag") == ["1.0"]


def test_each_option_field_renders_its_own_option_and_errors_name_it(rule_runner: RuleRunner) -> None:
    """The plan argv is its fields' own arguments: every option field set on the target shows
    its flag, and an error about that flag names the field (no hand-kept table between them)."""
    target = parsed_target(
        rule_runner,
        f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"], layer_groups=[["{STORE_PATH}"]], '
        f'copy_to_root=["{OTHER}"], perms=["x=0755"], entrypoint=["/e"], cmd=["c"], env={{"A": "1"}}, '
        'labels={"l": "v"}, workdir="/w", user="app", uid=7, gid=8, stop_signal="SIGTERM", image_source="s", '
        'image_revision="r", exposed_ports=["80"], volumes=["/v"], compression_level=5, sbom=True, '
        'nix_snapshotter=True, allow_foreign_executables=True, system="x86_64-linux", arch="amd64", '
        'layering="per-path", copy_to_root_mode="copy")',
    )
    field_set = NixOciImageFieldSet.create(target)
    argv = field_set.plan_argv("1.0", (), ())
    fields = field_set.plan_option_fields()
    assert len(fields) >= 24
    flags = {a.split("=", 1)[0] for a in argv[1:]}
    missing = [f.alias for f in fields if f.flag not in flags]
    assert not missing, missing
    errors = field_set.error_fields()
    assert all(errors[f.flag] == f.alias for f in fields)
    assert errors["--max-layers"] == "max_layers" and errors["--copy-to-root-mode"] == "copy_to_root_mode"
    plain = parsed_target(rule_runner, f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"])')
    defaults = NixOciImageFieldSet.create(plain)
    assert values_of(defaults.plan_argv("1.0", (), ()), "--compression") == ["gzip"], "the option table's default"


def test_assemble_argv(rule_runner: RuleRunner) -> None:
    argv = assemble_argv("--out", "repo:1", ("--from-image=base/b:pulled",), [])
    assert argv[0] == "nix-assemble" and values_of(argv, "--out") == ["--out"]
    options_only(argv)


def test_unikraft_argv(rule_runner: RuleRunner) -> None:
    target = parsed_target(
        rule_runner,
        'unikraft_image(name="x", kernel="--kernel", arch="x86_64", plat="qemu", kconfig="--out", '
        f'package_name="{HOSTILE}", unikraft_version="{HOSTILE}", initrd_owner="0:0", output_path="{HOSTILE}", '
        f'cmd=["{HOSTILE}"], env={{"{HOSTILE}": "x"}}, labels={{"{HOSTILE}": "x"}})',
    )
    files = rule_runner.make_snapshot({"src/--kernel": "k", "src/--out": "c"})
    field_set = UnikraftImageFieldSet.create(target)
    argv = unikraft_argv(field_set, ImageNames("r", ("1",)), files)
    dependency = ImageDependency(EMPTY_DIGEST, target.address, HOSTILE, "1", "platform-0")
    argv += image_argv((dependency,))
    options_only(argv)
    assert values_of(argv, "--kernel") == ["src/--kernel"] and values_of(argv, "--out") == [HOSTILE]
    assert values_of(argv, "--include") == ["platform-0/--out:1"]


def test_nydus_argv(rule_runner: RuleRunner) -> None:
    target = parsed_target(rule_runner, f'nydus_image(name="x", source_image=":a", prefetch=["/a", "/b"], '
                                  f'output_path="{HOSTILE}", merge_platform=True)')  # fmt: skip
    source = ImageDependency(EMPTY_DIGEST, target.address, HOSTILE, "1", "source")
    argv = nydus_argv(NydusImageFieldSet.create(target), ImageNames("r", ("1",)), (source, source))
    assert options_only(argv, positionals=1) == ["source/--out:1"]
    assert values_of(argv, "--prefetch") == ["/a", "/b"] and values_of(argv, "--out") == [HOSTILE]


def test_index_argv(rule_runner: RuleRunner) -> None:
    target = parsed_target(rule_runner, f'oci_image_index(name="x", images=[":a"], image_source="{HOSTILE}", '
                                  f'image_revision="{HOSTILE}", output_path="{HOSTILE}")')  # fmt: skip
    images = (ImageDependency(EMPTY_DIGEST, target.address, HOSTILE, "1", "images/0"),)
    argv = index_argv(OciImageIndexFieldSet.create(target), ImageNames("r", ("1",)), images)
    assert options_only(argv, positionals=1) == ["images/0/--out:1"]
    assert values_of(argv, "--source") == [HOSTILE] and values_of(argv, "--label") == ["src:x"]


def test_every_kind_names_its_layout_entry_before_any_positional(rule_runner: RuleRunner) -> None:
    """`package_with` adds ``--image-name=REPOSITORY:REF`` (io.containerd.image.name) to every
    kind's argv, right after the command, so it never lands among the positionals."""
    names = ImageNames("team/--out", ("1",))
    argv = named_argv(["index", "--out=o", "--tag=1", "--", "a:1"], names)
    assert options_only(argv, positionals=1) == ["a:1"] and values_of(argv, "--image-name") == ["team/--out:1"]
    assembled = assemble_argv("o", "repo:1", (), [])
    assert named_argv(assembled, names) == assembled, "nix-assemble names its image itself"


def test_output_format_oci_archive_adds_one_export_process(rule_runner: RuleRunner) -> None:
    target = parsed_target(rule_runner, f'oci_image_index(name="x", images=[":a"], output_path="{HOSTILE}", '
                                  'output_format="oci-archive")')  # fmt: skip
    field_set = OciImageIndexFieldSet.create(target)
    assert isinstance(field_set, ImageFieldSet) and field_set.output_format.value == "oci-archive"
    process = export_archive_process(EMPTY_DIGEST, HOSTILE)
    assert options_only(process.argv, positionals=1) == [HOSTILE]
    assert values_of(process.argv, "--out") == [archive_path(HOSTILE)] == [f"{HOSTILE}.tar"]
    assert process.output_files == (f"{HOSTILE}.tar",)
    plain = parsed_target(rule_runner, 'oci_image_index(name="x", images=[":a"])')
    assert OciImageIndexFieldSet.create(plain).output_format.value == "oci"


def test_every_package_writes_its_build_record_beside_the_layout() -> None:
    names = ImageNames(HOSTILE, (HOSTILE, "2"), archive=True)
    process = record_process(EMPTY_DIGEST, HOSTILE, names)
    assert options_only(process.argv, positionals=1) == [f"{HOSTILE}:{HOSTILE}"]
    assert values_of(process.argv, "--out") == [f"{HOSTILE}.layerforge.json"] == list(process.output_files)
    assert values_of(process.argv, "--tag") == [HOSTILE, "2"] and values_of(process.argv, "--repository") == [HOSTILE]
    assert values_of(process.argv, "--archive") == [f"{HOSTILE}.tar"]
    assert values_of(record_process(EMPTY_DIGEST, "o", ImageNames("r", ("1",))).argv, "--archive") == []


def test_pull_argv() -> None:
    request = RemoteImageRequest(Address("src", target_name="x"), "r.example/a:1@sha256:" + "0" * 64, ("linux/amd64",))
    argv = pull_process(request).argv
    assert options_only(argv, positionals=1) == [request.image]
    assert values_of(argv, "--platform") == ["linux/amd64"]
    options_only(pull_process(RemoteImageRequest(request.address, request.image, (), shallow=True)).argv, 1)


def test_push_argv() -> None:
    art = BuiltImageArtifact(relpath=HOSTILE, layout=HOSTILE, ref="1", repository="r", tags=("1", "2"))
    argv = push_argv(art, "127.0.0.1:5000/r:1", insecure=True)
    assert options_only(argv, positionals=2) == ["--out:1", "127.0.0.1:5000/r:1"]
    assert values_of(argv, "--tag") == ["2"] and "--insecure" in argv


def test_push_argv_of_a_dry_run_and_a_recorded_push() -> None:
    art = BuiltImageArtifact(
        relpath=HOSTILE, layout=HOSTILE, ref="1", repository="r", tags=("1",), manifest_digest="sha256:" + "a" * 64
    )
    record = publish_record_path("/repo/dist", art)
    assert record == f"/repo/dist/{HOSTILE}.publish.layerforge.json"
    argv = push_argv(art, "127.0.0.1:5000/r:1", insecure=False, record=record)
    assert options_only(argv, positionals=2) == ["--out:1", "127.0.0.1:5000/r:1"]
    assert values_of(argv, "--record") == [record] and "--dry-run" not in argv
    dry = push_argv(art, "127.0.0.1:5000/r:1", insecure=False, dry_run=True)
    assert "--dry-run" in dry and options_only(dry, positionals=2)
    data = dict(push_data(art, "127.0.0.1:5000", "r", ("127.0.0.1:5000/r:1",)))
    assert data["registries"] == ("127.0.0.1:5000",) and data["digest"] == art.manifest_digest


def test_run_argv() -> None:
    tool: Any = SimpleNamespace(runtime="podman", runtime_options=["--root=/x"], run_options=["--network=none"])
    art = BuiltImageArtifact(relpath="dist/x", layout="dist/x", ref="1", repository=HOSTILE, tags=("1",))
    argv = run_argv(tool, art)
    assert argv[-2:] == ["{chroot}/dist/x:1", "--"]
    options_only(argv[:-2])
    assert values_of(argv, "--tag") == ["--out:1"]


def test_nix_file_is_never_an_option_of_nix_instantiate() -> None:
    evaluation = NixEvaluation.nix_file(
        "--expr.nix", attrs=("--help",), argstrs=(("v", "--eval"),), digest=EMPTY_DIGEST,
        address=Address("", target_name="x"), field="nix_file",
    )  # fmt: skip
    # Nix takes what follows -A and --argstr NAME as values; the file alone needs ./
    assert evaluation.argv == ("./--expr.nix", "-A", "--help", "--argstr", "v", "--eval")


def test_provenance_argv_records_target_and_source_as_option_values(rule_runner: RuleRunner) -> None:
    """An `sbom` image's assembly is told the target and the Nix file or flake it came from
    (each value one ``--flag=value``); any other image's assembly is told nothing."""
    by_file = parsed_target(
        rule_runner,
        f'nix_oci_image(name="x", nix_file="{HOSTILE}", attr="{HOSTILE}", argstrs={{"{HOSTILE}": "{HOSTILE}"}}, '
        f'copy_to_root_attrs=["{HOSTILE}"], system="aarch64-linux", sbom=True)',
    )
    argv = ["nix-assemble", *NixOciImageFieldSet.create(by_file).provenance_argv()]
    options_only(argv)
    assert values_of(argv, "--provenance-target") == ["src:x"]
    assert values_of(argv, "--provenance-nix-file") == [f"src/{HOSTILE}"]
    assert values_of(argv, "--provenance-attr") == [HOSTILE]
    assert values_of(argv, "--provenance-argstr") == [f"{HOSTILE}={HOSTILE}"]
    assert values_of(argv, "--provenance-copy-to-root-attr") == [HOSTILE]
    assert values_of(argv, "--provenance-system") == ["aarch64-linux"]
    flake = parsed_target(
        rule_runner, 'nix_oci_image(name="f", flake="sub#app", copy_to_root_attrs=[".#tools"], sbom=True)', "f"
    )
    argv = ["nix-assemble", *NixOciImageFieldSet.create(flake).provenance_argv()]
    options_only(argv)
    assert values_of(argv, "--provenance-flake") == ["path:./src/sub#app"]
    assert values_of(argv, "--provenance-copy-to-root-attr") == ["path:./src#tools"]
    plain = parsed_target(rule_runner, f'nix_oci_image(name="p", store_paths=["{STORE_PATH}"], sbom=True)', "p")
    assert NixOciImageFieldSet.create(plain).provenance_argv() == ["--provenance-target=src:p"]
    off = parsed_target(rule_runner, 'nix_oci_image(name="o", nix_file="i.nix")', "o")
    assert NixOciImageFieldSet.create(off).provenance_argv() == []
    assert assemble_argv("o", "repo:1", (), [], ["--provenance-target=src:p"])[-1] == "--provenance-target=src:p"
